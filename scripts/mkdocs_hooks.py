"""mkdocs hooks: the CLI reference page is the parser's own help, and the
docstrings' Sphinx roles read as plain code.

``docs/cli.md`` holds a marker; at build time it is replaced by the
``--help`` text of ``peerpool`` and of every subcommand, taken from
``peerpool.cli.build_parser()``, so the page cannot drift from the command.

The docstrings name other objects with Sphinx roles (``:class:`~x.Y```),
which mkdocstrings renders as the role's text followed by the code; the role
is dropped (and a leading ``~`` shortens the name to its last part, as
Sphinx would) so a reader sees ``Y``.
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

MARKER = "<!-- cli-reference -->"
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>(~?)([^<]*)</code>")


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


def _role(match: re.Match[str]) -> str:
    name = match.group(2)
    if match.group(1):
        name = name.rsplit(".", 1)[-1]
    return f"<code>{name}</code>"


def on_page_content(html: str, page: Any, **_: Any) -> str:
    return _ROLE.sub(_role, html)
