"""``peerpool directory``: run a JoinMarket directory node."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from peerpool.joinmarket.server import DirectoryServer
from peerpool.joinmarket.server_core import ServerConfig
from peerpool.joinmarket.wire import MAX_LINE_BYTES


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "directory",
        help="run a JoinMarket directory node",
        description="Serve the JoinMarket onion message channel protocol (a directory node). "
        "Put it behind a Tor onion service to make it reachable over Tor.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5222, help="port to bind (default 5222)")
    parser.add_argument(
        "--network", required=True, help="bitcoin network: mainnet, testnet, signet, regtest"
    )
    parser.add_argument(
        "--directory-id",
        default=None,
        help="turn on JMP-0005 nick authentication with this identity (e.g. ONION.onion:5222)",
    )
    parser.add_argument("--motd", default="peerpool JoinMarket directory")
    parser.add_argument("--max-line", type=int, default=MAX_LINE_BYTES, help="bytes per line")
    parser.add_argument("--max-peers", type=int, default=10_000)
    defaults = ServerConfig(network="")
    parser.add_argument(
        "--rate", type=float, default=defaults.rate, help="lines/s per connection (500)"
    )
    parser.add_argument("--burst", type=float, default=defaults.burst, help="lines per burst")
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


def _new_loop() -> asyncio.AbstractEventLoop:
    try:  # uvloop when installed; never required
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise SystemExit(f"peerpool directory: port {args.port} out of range")
    config = ServerConfig(
        network=args.network,
        motd=args.motd,
        directory_id=args.directory_id,
        max_line=args.max_line,
        max_peers=args.max_peers,
        rate=args.rate,
        burst=args.burst,
        require_verified=args.require_verified,
    )
    server = DirectoryServer(args.host, args.port, config=config, http_port=args.http_port)

    async def main() -> None:
        await server.start()
        auth = f", nick auth as {args.directory_id}" if args.directory_id else ""
        print(f"directory {server.nick} on {server.address} ({args.network}{auth})", flush=True)
        await server.serve_forever()

    loop = _new_loop()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            loop.run_until_complete(main())
    finally:
        loop.run_until_complete(server.close())
        loop.close()
    return 0
