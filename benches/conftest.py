"""Benchmark conventions and the ratio table printed by `make bench`.

Every benchmark is marked ``@pytest.mark.benchmark(group="...")``. In a group,
the one whose test name ends in ``_baseline`` is the baseline (the pure-Python
reference of the kernel, or the peer library); the others are ours. Set
``benchmark.extra_info["bytes"]`` or ``["items"]`` (per call) to get a
throughput column, and ``["figure"]`` (a string) for an end-to-end figure that
is not a per-call time. Under `make test` (``--benchmark-disable``) each
benchmark body runs once as a smoke test and no table is printed.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

#: Where `make bench` leaves the figures for scripts/update_readme_bench.py.
SUMMARY = Path(__file__).resolve().parents[1] / ".benchmarks" / "summary.json"


def _throughput(median: float, info: dict[str, Any]) -> str:
    if median <= 0:
        return ""
    if "bytes" in info:
        return f"{info['bytes'] / median / 1e9:.3f} GB/s"
    if "items" in info:
        return f"{info['items'] / median:,.0f} items/s"
    return ""


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled or not session.benchmarks:
        return
    groups: dict[str, list[Any]] = defaultdict(list)
    for bench in session.benchmarks:
        # a benchmark whose test failed before its first round has no data
        if bench.stats is not None and bench.stats.data:  # type: ignore[union-attr]
            groups[bench.group or bench.name].append(bench)
    rows: list[dict[str, Any]] = []
    tr = terminalreporter
    tr.write_sep("=", "peerpool: ours vs baseline (median per call; ratio = baseline / ours)")
    tr.write_line(f"{'group':34} {'ours':>12} {'baseline':>12} {'ratio':>8}  throughput (ours)")
    for group in sorted(groups):
        benches = groups[group]
        base = [b for b in benches if b.name.split("[")[0].endswith("_baseline")]
        ours = [b for b in benches if b not in base]
        base_median = base[0].stats.median if base else None
        for b in ours:
            median = b.stats.median
            ratio = f"{base_median / median:7.1f}x" if base_median and median else "     n/a"
            base_txt = f"{base_median * 1e3:10.3f}ms" if base_median else "         n/a"
            label = group if len(ours) == 1 else f"{group}:{b.name}"
            line = f"{label[:34]:34} {median * 1e3:10.3f}ms {base_txt} {ratio}  "
            line += _throughput(median, b.extra_info)
            if "figure" in b.extra_info:
                line += f"  {b.extra_info['figure']}"
            tr.write_line(line)
            rows.append(
                {
                    "group": label,
                    "ours_s": median,
                    "baseline_s": base_median,
                    "baseline": base[0].name if base else None,
                    "ratio": base_median / median if base_median and median else None,
                    "throughput": _throughput(median, b.extra_info),
                    "figure": b.extra_info.get("figure", ""),
                    "baseline_figure": base[0].extra_info.get("figure", "") if base else "",
                    "measured": time.strftime("%Y-%m-%d", time.gmtime()),
                }
            )
    SUMMARY.parent.mkdir(exist_ok=True)
    previous = json.loads(SUMMARY.read_text()) if SUMMARY.exists() else {}
    # a partial run (one bench file) updates its groups and keeps the others
    previous.update({r["group"]: r for r in rows})
    tmp = SUMMARY.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(previous, indent=1))
    tmp.replace(SUMMARY)
