"""StallMeter: the rate of a message in flight over a window of waiting."""

from __future__ import annotations

import pytest

from peerpool.bitcoin.stall import DEFAULT_MIN_RECEIVE_RATE, StallMeter
from peerpool.errors import InputError


def test_a_drip_is_caught_once_a_window_is_measured() -> None:
    meter = StallMeter(min_rate=1000, window=10)
    for _ in range(9):  # nine seconds of a byte a second: not a window yet
        assert meter.waited(1.0, 1) is None
    assert meter.time_left() == pytest.approx(1.0)
    assert meter.waited(1.0, 1) == pytest.approx(1.0)  # 10 bytes in 10 s


def test_a_steady_stream_passes_and_the_window_restarts() -> None:
    meter = StallMeter(min_rate=1000, window=2)
    assert meter.waited(1.5, 10_000) is None
    assert meter.waited(0.5, 0) is None  # 10 kB over 2 s: fine, and a new window
    assert meter.time_left() == pytest.approx(2.0)
    assert meter.waited(2.0, 100) == pytest.approx(50.0)


def test_reset_between_messages_forgets_the_wait() -> None:
    meter = StallMeter(min_rate=1000, window=2)
    meter.waited(1.9, 0)
    meter.reset()
    assert meter.waited(1.9, 0) is None and meter.time_left() == pytest.approx(0.1)


def test_the_default_floor_passes_a_4_gb_block_in_34_hours() -> None:
    assert 4e9 / DEFAULT_MIN_RECEIVE_RATE < 34 * 3600
    assert not StallMeter(0, 1).enabled
    with pytest.raises(InputError):
        StallMeter(-1, 1)
    with pytest.raises(InputError):
        StallMeter(1, 0)
