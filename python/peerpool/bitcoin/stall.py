"""``StallMeter``: is a message in flight arriving, or is the peer dripping it?

Any byte is progress to a plain inactivity timer, so a peer that sends one
byte a second holds a request (and a connection slot, and a decoder buffer)
forever. The client measures instead, over the time it spends waiting for
the socket while a message is partly received, the rate at which its bytes
come; once ``window`` seconds of such waiting are measured and the rate is
below ``min_rate`` the peer is dripping and is dropped. Time our own handlers
spend is not counted (the socket was not being waited on), and the window
restarts whenever the stream is between messages.

No clock and no asyncio here: the driver passes the seconds it waited.
"""

from __future__ import annotations

from peerpool.errors import InputError

#: The lowest rate a message in flight may arrive at (bytes per second). A
#: 4 GB block at 32 KiB/s takes 34 hours, so any link that can carry one at
#: all (a 1 Mbit/s line: 125 kB/s; a slow Tor circuit: ~100 kB/s) is well
#: above it, and a drip of a byte a second is 30,000 times below.
DEFAULT_MIN_RECEIVE_RATE = 32 * 1024
#: Seconds of waiting over which the rate is measured: long enough that a TCP
#: retransmission stall of a few seconds averages out.
DEFAULT_STALL_WINDOW = 30.0


class StallMeter:
    def __init__(self, min_rate: float, window: float) -> None:
        if min_rate < 0 or window <= 0:
            raise InputError("min_rate must be >= 0 and window > 0")
        self.min_rate = min_rate
        self.window = window
        self.reset()

    @property
    def enabled(self) -> bool:
        return self.min_rate > 0

    def reset(self) -> None:
        """The stream is between messages: nothing to measure."""
        self._waited = 0.0
        self._bytes = 0

    def time_left(self) -> float:
        """How long the next wait may last before the window is complete."""
        return max(self.window - self._waited, 0.0)

    def waited(self, seconds: float, received: int) -> float | None:
        """Count a wait mid-message that brought ``received`` bytes; returns
        the rate if a complete window came in below the minimum, else None."""
        self._waited += seconds
        self._bytes += received
        if self._waited < self.window:
            return None
        rate = self._bytes / self._waited
        self.reset()
        return rate if rate < self.min_rate else None
