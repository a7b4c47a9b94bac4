"""An asyncio loop in a daemon thread, for benchmarks of asyncio code.

pytest-benchmark's timed call is synchronous, so the coroutines under test run
on this loop and the timed call blocks on their result.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any


class LoopThread:
    def __init__(self, timeout: float = 120) -> None:
        """``timeout``: how long ``run`` waits for a coroutine before it fails."""
        self.timeout = timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(self.timeout if timeout is None else timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
