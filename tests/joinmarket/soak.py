"""Sizes for the JoinMarket soak tests: short in `make test`, long on request.

Tests marked ``soak`` run in every `make test` at their short size; with
``PEERPOOL_SOAK=1`` in the environment they run at the size the issue
measured (``pytest -m soak`` selects only them).
"""

from __future__ import annotations

import os

LONG = os.environ.get("PEERPOOL_SOAK", "") not in ("", "0")


def size(short: int, long: int) -> int:
    return long if LONG else short
