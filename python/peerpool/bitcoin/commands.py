"""The Bitcoin subcommands of ``peerpool``: ``scan`` and ``sync``, each
registered by the module that runs it (their options, validation and help
live there)."""

from __future__ import annotations

from typing import Any

from peerpool.bitcoin import scan, sync_command


def register(subparsers: Any) -> None:
    scan.register(subparsers)
    sync_command.register(subparsers)
