"""Write the Chord DHT benchmark table into README.md (between the
``<!-- chord-bench:begin -->`` and ``<!-- chord-bench:end -->`` markers) from
the last run of benches/bench_chord_dht.py: medians from
.benchmarks/summary.json, p99s from .benchmarks/chord_dht_p99.json. Figures
are never typed in by hand:

    .venv/bin/pytest -p no:cacheprovider benches/bench_chord_dht.py --benchmark-enable
    .venv/bin/python scripts/chord_bench_readme.py
"""

from __future__ import annotations

import json
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = ROOT / ".benchmarks" / "summary.json"
P99 = ROOT / ".benchmarks" / "chord_dht_p99.json"
BEGIN, END = "<!-- chord-bench:begin -->", "<!-- chord-bench:end -->"
#: The issue's targets (issue 12), shown beside each figure.
TARGETS = {
    "remote_get": "p50 < 2 ms",
    "missing_get": "< 10 ms",
    "set": ">= 10,000 sets/s",
}


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds * 1e3:,.2f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def table(rows: dict[str, dict], p99: dict[str, float]) -> str:
    lines = [
        "| what | vs | ours (median) | theirs (median) | ours p99 | theirs p99 | sets/s ours / theirs | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for group in sorted(g for g in rows if g.startswith("chord.dht.")):
        r = rows[group]
        what, versus = group.removeprefix("chord.dht.").split(":")
        rate = ""
        if what == "set":
            from benches.bench_chord_dht import BURST

            rate = f"{BURST / r['ours_s']:,.0f} / {BURST / r['baseline_s']:,.0f}"
        lines.append(
            f"| {what} | {versus} | {_fmt(r['ours_s'])} | {_fmt(r.get('baseline_s'))} | "
            f"{_fmt(p99.get(group + '/ours'))} | {_fmt(p99.get(group + '/theirs'))} | {rate} | "
            f"{TARGETS.get(what, '')} |"
        )
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(SUMMARY.stat().st_mtime))
    lines += [
        "",
        f"Measured {stamp}, {platform.machine()}, Python {platform.python_version()}, on the "
        "project's shared 2-core machine (other builds running): three storing nodes in "
        "separate processes, the client in the benchmark's process.",
    ]
    return "\n".join(lines)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    if not SUMMARY.exists():
        print("no .benchmarks/summary.json: run the benchmark first", file=sys.stderr)
        return 1
    rows = json.loads(SUMMARY.read_text())
    p99 = json.loads(P99.read_text()) if P99.exists() else {}
    readme = ROOT / "README.md"
    text = readme.read_text()
    new, n = re.subn(
        re.escape(BEGIN) + ".*?" + re.escape(END),
        BEGIN + "\n" + table(rows, p99) + "\n" + END,
        text,
        flags=re.S,
    )
    if n != 1:
        print("README has no chord-bench markers", file=sys.stderr)
        return 1
    readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
