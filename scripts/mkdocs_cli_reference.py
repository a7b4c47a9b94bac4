"""A mkdocs hook: the CLI reference page is the parser's own help.

``docs/cli.md`` holds a marker; at build time it is replaced by the
``--help`` text of ``peerpool`` and of every subcommand, taken from
``peerpool.cli.build_parser()``, so the page cannot drift from the command.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

MARKER = "<!-- cli-reference -->"


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.extend(action.choices.items())
    return found


def _sections(parser: argparse.ArgumentParser, prog: str, level: int) -> list[str]:
    out = [f"{'#' * level} `{prog}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, sub in _subparsers(parser):
        out += _sections(sub, f"{prog} {name}", min(level + 1, 4))
    return out


def cli_reference() -> str:
    """The help of ``peerpool`` and of each subcommand, as Markdown."""
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: fix the width
    from peerpool.cli import build_parser

    return "\n".join(_sections(build_parser(), "peerpool", 2))


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    return markdown
