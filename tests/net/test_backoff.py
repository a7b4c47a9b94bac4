"""Backoff: exponential, capped, jittered downwards, bounded by deadline and attempts."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerpool.errors import InputError
from peerpool.net import Backoff


class FakeClock:
    """A clock the test moves by hand, so deadlines are exact."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_delays_grow_by_the_multiplier_up_to_the_cap() -> None:
    run = Backoff(initial=1, multiplier=2, cap=10, jitter=0).start()
    assert [run.next_delay() for _ in range(6)] == [1, 2, 4, 8, 10, 10]


def test_jitter_only_shortens_and_is_deterministic_with_a_seed() -> None:
    policy = Backoff(initial=1, multiplier=2, cap=10, jitter=0.5)
    first = [policy.start(rng=random.Random(1)).next_delay() for _ in range(1)]
    again = [policy.start(rng=random.Random(1)).next_delay() for _ in range(1)]
    assert first == again
    run = policy.start(rng=random.Random(2))
    for expected in (1, 2, 4, 8, 10, 10):
        delay = run.next_delay()
        assert delay is not None
        assert expected * 0.5 <= delay <= expected


def test_max_attempts_ends_the_loop() -> None:
    run = Backoff(initial=1, jitter=0, max_attempts=3).start()
    assert run.next_delay() == 1  # after attempt 1
    assert run.next_delay() == 2  # after attempt 2
    assert run.next_delay() is None  # attempt 3 was the last


def test_deadline_gives_up_when_the_wait_would_pass_it() -> None:
    clock = FakeClock()
    run = Backoff(initial=1, multiplier=2, cap=10, jitter=0, deadline=5).start(clock=clock)
    assert run.remaining() == 5
    assert run.next_delay() == 1
    clock.now += 1
    assert run.next_delay() == 2
    clock.now += 2  # 3 s used, 2 s left: a 4 s wait would overrun
    assert run.next_delay() is None
    assert not run.expired()
    clock.now += 2
    assert run.expired() and run.remaining() == 0


def test_start_can_tighten_the_deadline_but_not_loosen_it() -> None:
    clock = FakeClock()
    policy = Backoff(deadline=10)
    assert policy.start(clock=clock, deadline=3).remaining() == 3
    assert policy.start(clock=clock, deadline=30).remaining() == 10
    assert Backoff().start(clock=clock).remaining() is None


def test_reset_forgets_failures() -> None:
    run = Backoff(initial=1, jitter=0).start()
    run.next_delay()
    run.next_delay()
    run.reset()
    assert run.next_delay() == 1


def test_huge_failure_counts_stay_at_the_cap() -> None:
    policy = Backoff(initial=1, multiplier=10, cap=60, jitter=0)
    assert policy.base_delay(10_000) == 60


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": -1},
        {"multiplier": 0.5},
        {"cap": 0.5, "initial": 1},
        {"jitter": 1.5},
        {"deadline": -1},
        {"max_attempts": 0},
        {"initial": float("nan")},
    ],
)
def test_bad_policies_are_input_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError, match="Backoff"):
        Backoff(**kwargs)  # type: ignore[arg-type]


@given(
    initial=st.floats(0.001, 10),
    multiplier=st.floats(1, 5),
    extra=st.floats(0, 100),
    jitter=st.floats(0, 1),
    seed=st.integers(0, 2**32),
)
def test_delays_never_exceed_the_cap_and_never_go_negative(
    initial: float, multiplier: float, extra: float, jitter: float, seed: int
) -> None:
    policy = Backoff(initial=initial, multiplier=multiplier, cap=initial + extra, jitter=jitter)
    run = policy.start(rng=random.Random(seed))
    previous_base = 0.0
    for failures in range(1, 40):
        delay = run.next_delay()
        assert delay is not None
        assert 0 <= delay <= policy.cap
        base = policy.base_delay(failures)
        assert base >= previous_base  # the un-jittered schedule never shrinks
        previous_base = base
