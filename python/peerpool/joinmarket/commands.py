"""``peerpool directory``: run a JoinMarket directory node.

Every option is checked before the server starts, and a failure to listen
(port in use, a host that does not resolve) is one line naming the address.
SIGTERM stops it exactly as Ctrl-C does: peers are told goodbye and closed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import math
import re
import signal
import sys
from typing import Any

from peerpool.cli_errors import CommandError
from peerpool.joinmarket.nickauth import validate_directory_id
from peerpool.joinmarket.server import DirectoryServer
from peerpool.joinmarket.server_state import ServerConfig
from peerpool.joinmarket.wire import MAX_LINE_BYTES

#: The networks a JoinMarket handshake names.
NETWORKS = ("mainnet", "testnet", "signet", "regtest")

_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
_DIRECTORY_ID_PORT = re.compile(r".+:[0-9]{1,5}")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "directory",
        help="run a JoinMarket directory node",
        description="Serve the JoinMarket onion message channel protocol as a directory node "
        "until Ctrl-C or SIGTERM. Put it behind a Tor onion service to make it reachable "
        "over Tor. Prints 'directory NICK on HOST:PORT (NETWORK)' once it listens.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address (or name) to listen on")
    parser.add_argument("--port", type=int, default=5222, help="port to listen on; 0 picks one")
    parser.add_argument(
        "--network",
        required=True,
        choices=NETWORKS,
        metavar="NETWORK",
        help="bitcoin network of the peers: " + ", ".join(NETWORKS),
    )
    parser.add_argument(
        "--directory-id",
        default=None,
        metavar="HOST:PORT",
        help="turn on JMP-0005 nick authentication with this identity, lower case "
        "(e.g. ONION.onion:5222, the address peers dial); off when not given",
    )
    parser.add_argument(
        "--motd", default="peerpool JoinMarket directory", help="message of the day (one line)"
    )
    parser.add_argument(
        "--max-line", type=int, default=MAX_LINE_BYTES, metavar="BYTES",
        help="longest line accepted from a peer",
    )  # fmt: skip
    parser.add_argument("--max-peers", type=int, default=10_000, help="peers served at once")
    defaults = ServerConfig(network="")
    parser.add_argument(
        "--rate",
        type=float,
        default=defaults.rate,
        help="lines per second a connection may send, sustained (default %(default)s)",
    )
    parser.add_argument(
        "--burst",
        type=float,
        default=defaults.burst,
        help="lines a connection may send at once (default %(default)s)",
    )
    parser.add_argument(
        "--require-verified",
        action="store_true",
        help="with --directory-id: refuse peers that do not prove their nick (JMP-0005)",
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=None,
        help="serve /health and /status on this port of 127.0.0.1 (off by default)",
    )
    parser.set_defaults(run=run)


def _check_host(host: str) -> None:
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return
    if _HOSTNAME.fullmatch(host) is None:
        raise CommandError(f"--host {host!r}: not an IP address or host name")


def validate(args: argparse.Namespace) -> ServerConfig:
    """The server's configuration from the options; CommandError naming the bad one."""
    _check_host(args.host)
    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port {args.port}: out of range 0..65535")
    if args.directory_id is not None:
        validate_directory_id(args.directory_id)  # InputError: "invalid directory-id ..."
        if _DIRECTORY_ID_PORT.fullmatch(args.directory_id) is None:
            raise CommandError(f"--directory-id {args.directory_id!r}: invalid directory-id, "
                               "give HOST:PORT")  # fmt: skip
    if "\n" in args.motd or "\r" in args.motd:
        raise CommandError("--motd: must be one line")
    if args.require_verified and args.directory_id is None:
        raise CommandError("--require-verified needs --directory-id")
    if args.http_port is not None and not 0 <= args.http_port <= 65535:
        raise CommandError(f"--http-port {args.http_port}: out of range 0..65535")
    for name, value in (("--max-line", args.max_line), ("--max-peers", args.max_peers)):
        if value < 1:
            raise CommandError(f"{name} {value}: must be at least 1")
    for name, value in (("--rate", args.rate), ("--burst", args.burst)):
        if not (math.isfinite(value) and value > 0):
            raise CommandError(f"{name} {value}: must be a positive number")
    return ServerConfig(
        network=args.network,
        motd=args.motd,
        directory_id=args.directory_id,
        max_line=args.max_line,
        max_peers=args.max_peers,
        rate=args.rate,
        burst=args.burst,
        require_verified=args.require_verified,
    )


def _new_loop() -> asyncio.AbstractEventLoop:
    try:  # uvloop when installed; never required
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(args: argparse.Namespace) -> int:
    config = validate(args)
    server = DirectoryServer(args.host, args.port, config=config, http_port=args.http_port)

    async def serve() -> None:
        try:
            await server.start()
        except OSError as exc:  # in use, not ours to bind, does not resolve
            raise CommandError(
                f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
            ) from exc
        auth = f", nick auth as {args.directory_id}" if args.directory_id else ""
        print(f"directory {server.nick} on {server.address} ({args.network}{auth})", flush=True)
        await server.serve_forever()

    loop = _new_loop()
    task = loop.create_task(serve())
    # Ctrl-C and SIGTERM (what service managers and `kill` send) take the same
    # way out: the serving task is cancelled, then the server says goodbye.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        loop.run_until_complete(server.close())
        loop.close()
    print("directory stopped", file=sys.stderr, flush=True)
    return 0
