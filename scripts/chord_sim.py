"""The Chord ring at 10,000 nodes, simulated in one process: hops and load.

Builds a converged ring of ChordCores (peerpool.chord.sim), stores keys from
random nodes, reads each back from another random node, and prints the hop
histogram (remote requests per position lookup) and the keys-per-node
distribution. With ``--readme`` it rewrites the block between the
``chord-sim`` markers of README.md with what it measured.

    .venv/bin/python scripts/chord_sim.py --nodes 10000 --keys 2000 --readme
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import time
from collections import Counter
from pathlib import Path

from peerpool.chord.sim import Simulator

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- chord-sim:begin -->", "<!-- chord-sim:end -->"


def measure(nodes: int, keys: int, seed: int) -> str:
    started = time.perf_counter()
    sim = Simulator(seed=seed)
    cores = sim.build(nodes)
    for i in range(keys):
        sim.set(sim.rng.choice(cores), f"key-{i}", f"value-{i}")
    for core in cores:
        core.hops.clear()
    wrong = sum(sim.get(sim.rng.choice(cores), f"key-{i}") != f"value-{i}" for i in range(keys))
    hops: Counter[int] = Counter()
    for core in cores:
        hops.update(core.hops)
    lookups = sum(hops.values())
    mean = sum(h * c for h, c in hops.items()) / lookups
    load = sorted(sim.primary_load())
    avg = statistics.fmean(load)
    links = [len(c.routing.known()) for c in cores]
    elapsed = time.perf_counter() - started
    width = 50
    peak = max(hops.values())
    lines = [
        f"{nodes:,} nodes, {keys:,} keys x 5 positions, every key read back from a random node "
        f"({wrong} wrong), seed {seed}, {elapsed:.0f} s:",
        "",
        "```",
        f"hops per position lookup ({lookups:,} lookups): mean {mean:.2f}, "
        f"1/2 log2 n = {0.5 * math.log2(nodes):.2f}, max {max(hops)} (log2 n + 2 = {math.log2(nodes) + 2:.1f})",
    ]
    for h in range(max(hops) + 1):
        count = hops.get(h, 0)
        bar = "#" * max(1 if count else 0, round(width * count / peak))
        lines.append(f"  {h:2d} hops {count:7,d} {100 * count / lookups:5.1f}%  {bar}")
    lines += [
        f"positions owned per node: mean {avg:.2f}, median {statistics.median(load):.0f}, "
        f"p90 {load[int(0.9 * len(load))]} ({load[int(0.9 * len(load))] / avg:.1f}x mean), "
        f"p99 {load[int(0.99 * len(load))]} ({load[int(0.99 * len(load))] / avg:.1f}x), "
        f"max {load[-1]} ({load[-1] / avg:.1f}x)",
        f"nodes each routes through (fingers + successors): mean {statistics.fmean(links):.1f}, "
        f"max {max(links)} (log2 n = {math.log2(nodes):.1f})",
        "```",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--readme", action="store_true", help="write the result into README.md")
    args = parser.parse_args()
    text = measure(args.nodes, args.keys, args.seed)
    print(text)
    if args.readme:
        readme = README.read_text()
        if BEGIN not in readme:
            raise SystemExit(f"README.md has no {BEGIN} marker")
        block = f"{BEGIN}\n{text}\n{END}"
        README.write_text(
            re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), block, readme, flags=re.S)
        )


if __name__ == "__main__":
    main()
