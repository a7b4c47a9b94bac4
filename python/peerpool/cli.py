"""The ``peerpool`` command. Each subcommand lives beside the code it drives
(``peerpool/<package>/commands.py`` with a ``register(subparsers)`` function);
this file only assembles them."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from peerpool.errors import PeerpoolError

# Modules that contribute subcommands, in the order `peerpool --help` lists them.
COMMAND_MODULES = (
    "peerpool.bitcoin.commands",
    "peerpool.joinmarket.commands",
    "peerpool.index.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="peerpool", description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except PeerpoolError as exc:
        print(f"peerpool {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
