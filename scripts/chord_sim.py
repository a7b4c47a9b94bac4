"""The Chord ring at 10,000 nodes, simulated in one process: hops and load.

Builds a converged ring of ChordCores (peerpool.chord.sim), stores keys from
random nodes, reads each back from another random node, and prints the hop
histogram (remote requests per position lookup) and the keys-per-node
distribution, for rings of py2p's ids and of nodes that chose among
candidate ids (``id_choices``). With ``--readme`` it rewrites the block between the
``chord-sim`` markers of README.md with what it measured.

    .venv/bin/python scripts/chord_sim.py --nodes 10000 --keys 10000 --readme
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from peerpool.chord.ring import RING_SIZE
from peerpool.chord.sim import Simulator

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- chord-sim:begin -->", "<!-- chord-sim:end -->"


@dataclass
class Run:
    """What one simulated ring measured."""

    choices: int
    hops: Counter[int]
    wrong: int
    share: list[float]  # each node's arc, in units of the mean arc (1/n of the ring)
    load: list[int]  # positions each node owns
    links: list[int]  # nodes each routes through
    seconds: float


def measure(nodes: int, keys: int, seed: int, choices: int) -> Run:
    started = time.perf_counter()
    sim = Simulator(seed=seed, id_choices=choices)
    cores = sim.build(nodes)
    for i in range(keys):
        sim.set(sim.rng.choice(cores), f"key-{i}", f"value-{i}")
    for core in cores:
        core.hops.clear()
    wrong = sum(sim.get(sim.rng.choice(cores), f"key-{i}") != f"value-{i}" for i in range(keys))
    hops: Counter[int] = Counter()
    for core in cores:
        hops.update(core.hops)
    ids = sorted(c.me.id for c in cores)
    mean_arc = RING_SIZE / nodes
    share = sorted(((ids[i] - ids[i - 1]) % RING_SIZE) / mean_arc for i in range(nodes))
    return Run(
        choices,
        hops,
        wrong,
        share,
        sorted(sim.primary_load()),
        [len(c.routing.known()) for c in cores],
        time.perf_counter() - started,
    )


def _spread(values: list[float] | list[int]) -> str:
    """p50 / p90 / p99 / max as multiples of the mean."""
    avg = statistics.fmean(values)
    picks = [values[int(q * (len(values) - 1))] for q in (0.5, 0.9, 0.99)] + [values[-1]]
    return " / ".join(f"{v / avg:.2f}" for v in picks)


def report(runs: list[Run], nodes: int, keys: int, seed: int) -> str:
    names = [f"id_choices={r.choices}" + (" (py2p ids)" if r.choices == 1 else "") for r in runs]
    lines = [
        f"{nodes:,} nodes, {keys:,} keys x 5 positions, every key read back from a random node "
        f"(wrong reads: {', '.join(str(r.wrong) for r in runs)}), seed {seed}, "
        f"{sum(r.seconds for r in runs):.0f} s:",
        "",
        "```",
        f"{'':44}" + "".join(f"{name:>30}" for name in names),
    ]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"{label:44}" + "".join(f"{cell:>30}" for cell in cells))

    def mean_hops(r: Run) -> float:
        return sum(h * c for h, c in r.hops.items()) / sum(r.hops.values())

    row(
        "hops per position lookup: mean / max",
        [f"{mean_hops(r):.2f} / {max(r.hops)}" for r in runs],
    )
    row("ring share per node, x mean: p50/p90/p99/max", [_spread(r.share) for r in runs])
    row("positions owned, x mean: p50/p90/p99/max", [_spread(r.load) for r in runs])
    row(
        "nodes each routes through: mean / max",
        [f"{statistics.fmean(r.links):.1f} / {max(r.links)}" for r in runs],
    )
    last = runs[-1]
    lookups = sum(last.hops.values())
    lines += [
        "",
        f"hops per position lookup, {names[-1]} ({lookups:,} lookups; "
        f"1/2 log2 n = {0.5 * math.log2(nodes):.2f}, log2 n + 2 = {math.log2(nodes) + 2:.1f}):",
    ]
    peak = max(last.hops.values())
    for h in range(max(last.hops) + 1):
        count = last.hops.get(h, 0)
        bar = "#" * max(1 if count else 0, round(50 * count / peak))
        lines.append(f"  {h:2d} hops {count:7,d} {100 * count / lookups:5.1f}%  {bar}")
    lines.append("```")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--id-choices", type=int, nargs="+", default=[1, 8], help="one ring per value"
    )
    parser.add_argument("--readme", action="store_true", help="write the result into README.md")
    args = parser.parse_args()
    runs = [measure(args.nodes, args.keys, args.seed, c) for c in args.id_choices]
    text = report(runs, args.nodes, args.keys, args.seed)
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
