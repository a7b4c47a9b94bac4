"""Task functions for the executor tests (module level: workers import them)."""

from __future__ import annotations

import os
import time


def slow_square(arg: tuple[int, float]) -> tuple[int, int, int]:
    """(n, n*n, pid) after sleeping; the pid says which worker ran it."""
    n, delay = arg
    time.sleep(delay)
    return n, n * n, os.getpid()


def kill_own_worker(arg: int) -> int:
    os._exit(1)


def fail(arg: int) -> int:
    raise ValueError(f"task {arg} fails")
