"""The ``peerpool`` command.

Each subcommand lives beside the code it drives (a ``register(subparsers)``
function in ``peerpool/<package>/commands.py``); this file assembles them and
owns what every subcommand shares: ``-v``, ``--version``, the help format, and
the rule that an error a user can cause is one line on stderr naming the thing
at fault with a non-zero exit code (the traceback only with ``-v``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from peerpool import __version__
from peerpool.cli_errors import EXIT_ERROR, EXIT_INTERRUPTED, one_line

# Modules that contribute subcommands, in the order `peerpool --help` lists them.
COMMAND_MODULES = (
    "peerpool.bitcoin.commands",
    "peerpool.joinmarket.commands",
    "peerpool.testing.commands",
    "peerpool.index.commands",
)

DESCRIPTION = """\
Pools of peer-to-peer connections, from the shell.

  peerpool scan FILE...          check Bitcoin block files (hash, size, transactions, merkle root)
  peerpool sync --network N --peer HOST:PORT --data DIR
                                 sync headers and blocks from peers into DIR (resumable)
  peerpool directory --network N run a JoinMarket directory node
  peerpool index --data DIR --db DIR
                                 index synced blocks into LMDB (txids, script histories)
  peerpool node start            run a Bitcoin SV regtest node on 127.0.0.1 (for tests)

`peerpool COMMAND --help` describes a command and each of its options."""

EPILOG = "Exit codes: 0 done, 1 a check failed, 2 bad input or an error, 130 interrupted."


class HelpFormatter(argparse.HelpFormatter):
    """Wraps a description unless it has line breaks of its own (then they are
    kept), and appends each option's default to its help, except where there is
    nothing to say (flags, required options, no default) or the help says it."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or default in (None, False, argparse.SUPPRESS)
            or action.required
            or not action.option_strings
        ):
            return text
        return text + " (default: %(default)s)"


VERBOSE_HELP = "more logging (-v info, -vv debug); errors then come with their traceback"


def _finish(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """Our help format everywhere, and -v on every command too, so that
    `peerpool scan -v FILE` works as well as `peerpool -v scan FILE`."""
    parser.formatter_class = HelpFormatter
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subs:
        for sub in action.choices.values():
            _finish(sub, top=False)
    if not subs and not top:
        # SUPPRESS: given here, it replaces the top-level count; absent, it keeps it
        parser.add_argument(
            "-v", "--verbose", action="count", default=argparse.SUPPRESS, help=VERBOSE_HELP
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="peerpool", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help=VERBOSE_HELP,
    )
    parser.add_argument("--version", action="version", version=f"peerpool {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do"
    )
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    _finish(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # every error ends here: one line, the traceback only with -v
        if args.verbose:
            traceback.print_exc()
        print(f"peerpool {args.command}: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
