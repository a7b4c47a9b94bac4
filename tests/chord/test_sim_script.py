"""scripts/chord_sim.py, the source of the README's 10,000-node figures, on a small ring."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "chord_sim.py"


def test_the_sim_script_measures_both_kinds_of_ids_and_reports_them() -> None:
    spec = importlib.util.spec_from_file_location("chord_sim", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    sys.modules["chord_sim"] = script  # dataclasses look their module up
    spec.loader.exec_module(script)
    runs = [script.measure(300, 60, 4, choices) for choices in (1, 8)]
    assert all(run.wrong == 0 for run in runs)
    # The shares are arcs over the mean arc: they average 1 whatever the ids.
    assert all(abs(sum(run.share) / len(run.share) - 1) < 1e-9 for run in runs)
    assert max(runs[1].share) < max(runs[0].share)
    text = script.report(runs, 300, 60, 4)
    assert "id_choices=1 (py2p ids)" in text and "id_choices=8" in text
    assert text.count(" hops ") >= 4  # the histogram's rows
