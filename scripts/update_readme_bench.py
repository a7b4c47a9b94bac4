"""Write the benchmark tables of the README from the figures of the last
`make bench` run (.benchmarks/summary.json, written by benches/conftest.py):
the kernels' table between the `<!-- bench:start -->` and `<!-- bench:end -->`
markers, and the Chord DHT's end-to-end table (groups `chord.dht.*`, with the
p99s and load averages benches/bench_chord_dht.py keeps in
.benchmarks/chord_dht_extra.json) between `<!-- chord-bench:begin -->` and
`<!-- chord-bench:end -->`. Figures are never typed in by hand: rerun
`make bench` (or one bench file, then this script) to refresh them."""

from __future__ import annotations

import json
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = ROOT / ".benchmarks" / "summary.json"
CHORD_EXTRA = ROOT / ".benchmarks" / "chord_dht_extra.json"
CHORD_BEGIN, CHORD_END = "<!-- chord-bench:begin -->", "<!-- chord-bench:end -->"
#: The DHT's targets (issue 12), shown beside each of its figures.
CHORD_TARGETS = {
    "remote_get": "p50 < 2 ms",
    "missing_get": "< 10 ms",
    "set": ">= 10,000 sets/s",
}

#: What each group must reach (from the issues), shown beside the figure.
TARGETS = {
    "bitcoin.tx_offsets.small_txs": ">= 30x reference",
    "bitcoin.tx_offsets.block_277647": ">= 30x reference",
    "bitcoin.chunker_1GiB": ">= 1 GB/s, peak growth <= 2*C + 16 MiB",
    "bitcoin.framing": ">= 0.8x one hashlib.sha256 pass",
    "bitcoin.check_headers": ">= 1 M headers/s and >= 4x reference",
    "bitcoin.header_store_connect": ">= 1 M headers/s",
    "bitcoin.header_store_reopen": "1 M headers + 1,000 forks reopen < 1 s",
    "bitcoin.fetch_block_chunks": ">= 0.8x a plain socket read; peak < 3x the chunk size above it",
    "chord.get_hashes_batch": ">= 3x hashlib loop",
    "chord.distance_batch": ">= 20x int loop (10,000 ids)",
    "jm.server.handshake_1000": "1,000 handshakes < 0.5 s, none dropped",
    "jm.server.public_relay_1000_peers": ">= 100,000 deliveries/s, none lost",
    "jm.server.private_relay_50_pairs": ">= 30,000 msg/s",
    "jm.server.public_paced_1000_peers": "p99 < 100 ms at 2,000 msg/s offered, none lost",
    "jm.taker.orderbook_1000_offers_3_directories": "< 1 s after the last offer",
    "pool.connect_retry_10_of_which_3_dead": "returns once the 7 live ones are connected",
    "index.parse.block_277647": ">= 30x reference",
    "index.parse.real_blocks": ">= 30x reference",
    "index.parse.small_txs_100MB": ">= 30x reference",
    "index.scan.small_txs": ">= 40x conduit-style preprocessor",
    "index.scan.demo_37MB": ">= 40x conduit-style preprocessor",
    "index.scan.segwit_heavy": ">= 40x conduit-style preprocessor",
    "index.chain": "two workers >= 1.6x one; Dask within 20% of local",
    "mesh.pools_update_10k": "< 10 ms",
    "mesh.token_stream_rs256": ">= 20x one verification per message",
    "mesh.dm_1KiB_one_way": ">= 100,000 DMs/s Python to Python, none lost (py-libp2p ~7,300/s)",
    "mesh.gossipsub_50_subscribers": "deliveries/s and p99 beside py-libp2p, none lost",
}


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1e3:.3f} ms"


def table(rows: dict[str, dict], kept: dict[str, str] | None = None) -> str:
    """``kept``: rows of the current README table for groups this summary lacks (a
    machine whose summary holds only some groups must not drop the others' figures)."""
    lines = [
        "| benchmark | ours (median) | baseline (median) | ratio | throughput / figure | target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rows = {g: r for g, r in rows.items() if not g.startswith("chord.dht.")}  # their own table
    kept = {g: line for g, line in (kept or {}).items() if g not in rows}
    for group in sorted([*rows, *kept]):
        if group in kept:
            lines.append(kept[group])
            continue
        r = rows[group]
        ratio = f"{r['ratio']:.1f}x" if r.get("ratio") else "n/a"
        extra = " ".join(x for x in (r.get("throughput"), r.get("figure")) if x)
        baseline_figure = r.get("baseline_figure")
        # end-to-end baselines have figures of their own (unless ours already quotes it)
        if baseline_figure and baseline_figure not in extra:
            extra += f" (baseline: {baseline_figure})"
        target = TARGETS.get(group.split(":")[0], "")
        lines.append(
            f"| {group} | {_ms(r['ours_s'])} | {_ms(r.get('baseline_s'))} | {ratio} | {extra} | {target} |"
        )
    # a partial run refreshes only its groups: say which rows are from which day
    fallback = time.strftime("%Y-%m-%d", time.gmtime(SUMMARY.stat().st_mtime))
    days: dict[str, list[str]] = {}
    for group in sorted(rows):
        days.setdefault(rows[group].get("measured", fallback), []).append(group.split(".")[0])
    if len(days) == 1:
        stamp = next(iter(days))
    else:
        stamp = "; ".join(
            f"{day} ({', '.join(sorted(set(prefixes)))})" for day, prefixes in sorted(days.items())
        )
    lines.append("")
    lines.append(
        f"Measured by `make bench` on {stamp}, {platform.machine()}, "
        f"Python {platform.python_version()}, this project's 2-core machine."
        + (" Groups this run did not measure keep their earlier rows." if kept else "")
    )
    return "\n".join(lines)


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds * 1e3:,.2f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def chord_table(rows: dict[str, dict], extra: dict) -> str | None:
    """The DHT's rows (None when this summary has none: the README keeps its table)."""
    groups = sorted(g for g in rows if g.startswith("chord.dht."))
    if not groups:
        return None
    p99 = extra.get("p99", {})
    lines = [
        "| what | vs | ours (median) | theirs (median) | ours p99 | theirs p99 "
        "| sets/s ours / theirs | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for group in groups:
        r = rows[group]
        what, versus = group.removeprefix("chord.dht.").split(":", 1)
        rate = ""
        if what == "set" and extra.get("burst"):
            burst = extra["burst"]
            theirs = f"{burst / r['baseline_s']:,.0f}" if r.get("baseline_s") else ""
            rate = f"{burst / r['ours_s']:,.0f} / {theirs}"
        lines.append(
            f"| {what} | {versus} | {_fmt(r['ours_s'])} | {_fmt(r.get('baseline_s'))} | "
            f"{_fmt(p99.get(group + '/ours'))} | {_fmt(p99.get(group + '/theirs'))} | {rate} | "
            f"{CHORD_TARGETS.get(what, '')} |"
        )
    load = extra.get("loadavg")
    # Above one, on two cores, something else was running beside the bench.
    busy = " (other builds and tests running)" if load and max(load) >= 1.0 else ""
    load_txt = (
        f"; 1-minute load average {load[0]:.1f} at the start and {load[1]:.1f} at the end"
        f" of the run{busy}"
        if load
        else ""
    )
    stamp = extra.get("measured") or rows[groups[0]].get("measured", "")
    lines += [
        "",
        f"Measured {stamp}, {platform.machine()}, Python {platform.python_version()}, on the "
        f"project's shared 2-core machine{load_txt}: three storing nodes in separate "
        "processes, the client in the benchmark's process.",
    ]
    return "\n".join(lines)


def _write_chord(text: str, rows: dict[str, dict]) -> str:
    extra = json.loads(CHORD_EXTRA.read_text()) if CHORD_EXTRA.exists() else {}
    body = chord_table(rows, extra)
    if body is None or CHORD_BEGIN not in text:
        return text
    return re.sub(
        re.escape(CHORD_BEGIN) + ".*?" + re.escape(CHORD_END),
        lambda _: CHORD_BEGIN + "\n" + body + "\n" + CHORD_END,
        text,
        flags=re.S,
    )


def _keep_footer(body: str, old_block: str, rows: dict[str, dict]) -> str:
    """A partial run: the rows it did not measure keep their dates and notes, so the
    old footer (from its "Measured by" line on) stays, and one line says which
    groups this run refreshed."""
    lines = old_block.strip("\n").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Measured by")), None)
    if start is None:
        return body
    table_part = body.split("\nMeasured by", 1)[0].rstrip("\n")
    groups = sorted({g.split(":")[0] for g in rows if not g.startswith("chord.dht.")})
    day = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(SUMMARY.stat().st_mtime))
    refreshed = f"Rerun on {day}: the rows of {', '.join(f'`{g}`' for g in groups)}."
    return "\n".join([table_part, "", *lines[start:], refreshed])


def main() -> int:
    if not SUMMARY.exists():
        print("no .benchmarks/summary.json: run `make bench` first", file=sys.stderr)
        return 1
    rows = json.loads(SUMMARY.read_text())
    readme = ROOT / "README.md"
    text = readme.read_text()
    if all(g.startswith("chord.dht.") for g in rows):
        # only the DHT's bench ran: the kernels' table (and its date) stays as it is
        readme.write_text(_write_chord(text, rows))
        return 0
    current = re.search(r"<!-- bench:start -->(.*)<!-- bench:end -->", text, flags=re.S)
    kept = {}
    for line in (current.group(1) if current else "").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 2 and cells[1] not in ("benchmark", "---"):
            kept[cells[1]] = line
    body = table(rows, kept)
    if any(g not in rows for g in kept):
        body = _keep_footer(body, current.group(1) if current else "", rows)
    new, n = re.subn(
        r"<!-- bench:start -->.*<!-- bench:end -->",
        "<!-- bench:start -->\n" + body + "\n<!-- bench:end -->",
        text,
        flags=re.S,
    )
    if n != 1:
        print("README has no bench markers", file=sys.stderr)
        return 1
    readme.write_text(_write_chord(new, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
