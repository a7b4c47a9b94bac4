"""``peerpool index``: build or update the LMDB index from synced blocks, or
query it (``--query txid|scripthash VALUE``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peerpool.bitcoin.networks import get_network
from peerpool.errors import InputError, QueryError
from peerpool.index.executors import Executor
from peerpool.index.indexer import DEFAULT_IN_FLIGHT, Indexer
from peerpool.index.store import DEFAULT_MAP_SIZE, IndexStore


def _hash_arg(kind: str, value: str) -> bytes:
    """A txid or script hash as shown (64 hex digits, byte-reversed) -> internal order."""
    text = value.strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise QueryError(f"a {kind} is 64 hex digits, not {value!r}")
    return bytes.fromhex(text)[::-1]


def _query(store: IndexStore, kind: str, value: str) -> int:
    if kind == "txid":
        loc = store.tx(_hash_arg(kind, value))
        if loc is None:
            print(f"txid {value}: not indexed")
            return 1
        print(f"txid {value} height {loc.height} offset {loc.offset} size {loc.size}")
        return 0
    if kind == "scripthash":
        history = store.history(_hash_arg(kind, value))
        print(f"scripthash {value}: {len(history)} outputs")
        for h in history:
            spent = (
                f"spent by {h.spent_by.txid[::-1].hex()}:{h.spent_by.input_index} "
                f"at height {h.spent_by.height}"
                if h.spent_by
                else "unspent"
            )
            print(
                f"  {h.txid[::-1].hex()}:{h.output_index} value {h.value} height {h.height} {spent}"
            )
        return 0 if history else 1
    raise QueryError(f"--query takes txid or scripthash, not {kind!r}")


def _executor(args: argparse.Namespace) -> Executor:
    if args.scheduler:
        from peerpool.index.executors_dask import DaskExecutor

        return DaskExecutor(args.scheduler)
    from peerpool.index.executors import LocalExecutor

    return LocalExecutor(args.workers)


def _run(args: argparse.Namespace) -> int:
    network = get_network(args.network)
    with IndexStore(args.db, network.name, map_size=args.map_size) as store:
        if args.query:
            return _query(store, *args.query)
        if args.data is None:
            raise InputError("--data is needed to index (or give --query)")
        if args.in_flight < 1:
            raise InputError("--in-flight must be >= 1")
        executor = _executor(args)
        try:
            report = Indexer(store, executor, args.in_flight).run(args.data, network)
        finally:
            executor.close()
    rate = report.bytes / report.seconds / 1e6 if report.seconds else 0.0
    print(
        f"indexed {report.indexed} blocks ({report.transactions} transactions, "
        f"{report.bytes / 1e6:.1f} MB, {rate:.1f} MB/s), undone {report.undone}, "
        f"chunks run again {report.resubmitted}, not yet downloaded {report.behind}",
        file=sys.stderr,
    )
    tip = report.tip
    print("tip none" if tip is None else f"tip {tip.height} {tip.hash[::-1].hex()}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("index", help="index synced blocks into LMDB, or query the index")
    p.add_argument("--network", default="bsv-regtest", help="network of the data (bsv-regtest)")
    p.add_argument("--data", type=Path, help="the folder `peerpool sync --data` filled")
    p.add_argument("--db", type=Path, required=True, help="the LMDB index folder")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local worker processes (CPU count)")
    where.add_argument("--scheduler", help="a Dask scheduler, tcp://host:8786")
    p.add_argument(
        "--in-flight", type=int, default=DEFAULT_IN_FLIGHT, help="chunks in flight at most (4)"
    )
    p.add_argument("--map-size", type=int, default=DEFAULT_MAP_SIZE, help="LMDB map size, bytes")
    p.add_argument("--query", nargs=2, metavar=("KIND", "VALUE"), help="txid|scripthash VALUE")
    p.set_defaults(run=_run)
