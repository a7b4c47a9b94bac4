"""One backoff policy for every retry loop in the library.

:class:`Backoff` is the immutable policy (initial delay, multiplier, cap,
jitter, overall deadline, optional attempt limit); :meth:`Backoff.start` gives a
:class:`BackoffRun`, the mutable state of one retry loop. The run only computes
delays: the caller sleeps (``asyncio.sleep``), so this module stays free of I/O
and is deterministic when a ``random.Random`` and a clock are injected.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from peerpool.errors import InputError

Clock = Callable[[], float]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``initial * multiplier**n``, capped, jittered, bounded.

    ``jitter`` is the fraction of each delay that is randomised downwards
    (0.2: a delay of 10 s becomes something in [8 s, 10 s]); jittering only
    downwards keeps ``cap`` a true upper bound while still spreading retries of
    many clients that failed together. ``deadline`` (seconds from
    :meth:`start`) and ``max_attempts`` end the loop; ``None`` means no limit.
    """

    initial: float = 1.0
    multiplier: float = 2.0
    cap: float = 60.0
    jitter: float = 0.2
    deadline: float | None = None
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        _check(math.isfinite(self.initial) and self.initial >= 0, "initial must be >= 0")
        _check(math.isfinite(self.multiplier) and self.multiplier >= 1, "multiplier must be >= 1")
        _check(math.isfinite(self.cap) and self.cap >= self.initial, "cap must be >= initial")
        _check(0 <= self.jitter <= 1, "jitter must be within [0, 1]")
        _check(self.deadline is None or self.deadline >= 0, "deadline must be >= 0")
        _check(self.max_attempts is None or self.max_attempts >= 1, "max_attempts must be >= 1")

    def start(
        self,
        *,
        rng: random.Random | None = None,
        clock: Clock = time.monotonic,
        deadline: float | None = None,
    ) -> BackoffRun:
        """Begin one retry loop now. ``deadline`` (seconds) tightens the policy's own."""
        limits = [d for d in (self.deadline, deadline) if d is not None]
        return BackoffRun(self, rng or random.Random(), clock, min(limits) if limits else None)

    def base_delay(self, failures: int) -> float:
        """The delay after ``failures`` consecutive failures (1, 2, ...) before jitter."""
        try:
            return min(self.initial * self.multiplier ** max(failures - 1, 0), self.cap)
        except OverflowError:  # a long-failing loop: far past the cap
            return self.cap


class BackoffRun:
    """The state of one retry loop under a :class:`Backoff` policy."""

    def __init__(
        self, policy: Backoff, rng: random.Random, clock: Clock, deadline: float | None
    ) -> None:
        self.policy = policy
        self._rng = rng
        self._clock = clock
        self._started = clock()
        self._deadline_at = None if deadline is None else self._started + deadline
        self.failures = 0

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without one."""
        if self._deadline_at is None:
            return None
        return max(self._deadline_at - self._clock(), 0.0)

    def expired(self) -> bool:
        """True once the run's deadline has passed (never, for a run without one)."""
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def next_delay(self) -> float | None:
        """Record a failure; return how long to wait before the next attempt.

        ``None`` means give up: the attempt limit is reached, or the deadline
        would pass before the delay ends (an attempt started at the deadline
        could not finish inside it, so it is not made).
        """
        self.failures += 1
        limit = self.policy.max_attempts
        if limit is not None and self.failures >= limit:
            return None
        delay = self.policy.base_delay(self.failures)
        if self.policy.jitter:
            delay *= 1 - self.policy.jitter * self._rng.random()
        remaining = self.remaining()
        if remaining is not None and delay >= remaining:
            return None
        return delay

    def reset(self) -> None:
        """Forget past failures (after a success) but keep the deadline."""
        self.failures = 0


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(f"Backoff: {message}")
