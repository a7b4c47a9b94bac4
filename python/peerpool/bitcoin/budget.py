"""``PayloadBudget``: bytes of non-block payloads held at once, across connections.

A peer may send a non-block message up to ``max_message_size`` (256 MiB by
default: a huge BSV transaction fits), and the protocol gathers it whole
before decoding it. Per connection that is bounded; with a hundred
connections it would be 25 GiB. A :class:`~peerpool.bitcoin.manager.ClientManager`
shares one budget between its connections: a streamed non-block message
(one at or above the decoder's threshold, ``large_message_limit``) reserves
its announced length at its header, before any of it is buffered, and gives
it back once decoded or when its connection ends. A message the budget cannot
hold is refused with :class:`~peerpool.errors.PayloadBudgetExceededError` and
its connection dropped (a failure, not a ban: the peer did nothing wrong
alone). Blocks are not counted: they are cut into chunks, never held whole.

No asyncio: the sans-I/O protocol calls it, and every call is short.
"""

from __future__ import annotations

import threading

from peerpool.errors import InputError

#: Four non-block messages of the largest default size at once.
DEFAULT_PAYLOAD_BUDGET = 1 << 30


class PayloadBudget:
    def __init__(self, limit: int = DEFAULT_PAYLOAD_BUDGET) -> None:
        if limit < 0:
            raise InputError("a payload budget cannot be negative")
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()  # managers on several loops may share one

    @property
    def used(self) -> int:
        return self._used

    @property
    def free(self) -> int:
        return self.limit - self._used

    def try_reserve(self, n: int) -> bool:
        with self._lock:
            if self._used + n > self.limit:
                return False
            self._used += n
            return True

    def release(self, n: int) -> None:
        with self._lock:
            self._used = max(self._used - n, 0)
