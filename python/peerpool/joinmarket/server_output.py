"""Everything the directory writes: per-turn batches, closed transports, the budget.

Three costs that an attacker can otherwise multiply:

* **Writes per message.** Relayed lines are gathered for one event-loop turn
  (the driver calls :meth:`Output.flush` once per turn, ``loop.call_soon``)
  and each recipient gets one ``write`` per turn, however many lines. A
  storm of departures is one batch too: 3,000 peers aborting at once cost one
  pass over the remaining peers with a few peerlist lines, not 3,000 passes.
* **Writes to transports already gone.** A reset is seen on read; the
  transport is closing before ``connection_lost`` runs. Writing to it makes
  asyncio log a warning per write, so closing writers are skipped.
* **Memory.** Each connection may queue ``max_write_buffer`` bytes, and all
  of them together ``max_queued_total``. Queue sizes are sampled on every
  write; when their sum passes the budget the exact total is taken and the
  largest backlogs (the peers that do not read) are cut until it is under
  three quarters of the budget, so the O(N) recount is paid once per quarter
  budget of new output at most.
"""

from __future__ import annotations

from collections.abc import Callable

from peerpool.joinmarket.messages import FEATURE_PEERLIST_FEATURES
from peerpool.joinmarket.peerlist import PeerEntry, encode_peerlist
from peerpool.joinmarket.server_state import Conn, PeerState, ServerConfig, ServerStats
from peerpool.joinmarket.wire import MessageType, encode_frame

Closer = Callable[[Conn, str], None]


class Output:
    def __init__(
        self,
        config: ServerConfig,
        stats: ServerStats,
        ready: list[Conn],
        conns: set[Conn],
        cut: Closer,
    ) -> None:
        self.config = config
        self.stats = stats
        self.ready = ready  # the core's list of broadcast targets (shared, not copied)
        self.conns = conns
        self._cut = cut
        self.queued_total = 0  # sum of the sampled queue sizes (an upper bound)
        self._public: list[tuple[Conn, bytes]] = []
        self._private: dict[Conn, list[bytes]] = {}
        self._departed: list[PeerEntry] = []
        self._over: list[Conn] = []

    @property
    def pending(self) -> bool:
        return bool(self._public or self._private or self._departed)

    # --- immediate writes -----------------------------------------------------------

    def send(self, conn: Conn, data: bytes) -> None:
        """Write now (handshake answers, pongs, peerlists)."""
        if conn.state is PeerState.CLOSED or conn.writer.is_closing():
            return
        conn.writer.write(data)
        self.stats.writes += 1
        self._sample(conn)
        self._enforce()

    def _sample(self, conn: Conn) -> None:
        size = conn.writer.get_write_buffer_size()
        self.queued_total += size - conn.queued
        conn.queued = size
        if size > self.config.max_write_buffer:
            self._over.append(conn)

    # --- batched for the turn -------------------------------------------------------

    def add_public(self, sender: Conn, frame: bytes) -> None:
        if self._private:
            self._flush_private()  # keep every sender's order across both kinds
            self._enforce()  # every write is followed by the limits, here too
        self._public.append((sender, frame))

    def add_private(self, target: Conn, frame: bytes) -> None:
        if self._public:
            self._flush_public()
            self._enforce()
            if target.state is not PeerState.READY:
                return  # the target itself was cut for its backlog
        frames = self._private.get(target)
        if frames is None:
            self._private[target] = [frame]
        else:
            frames.append(frame)

    def add_departure(self, entry: PeerEntry) -> None:
        self._departed.append(entry)

    def flush(self) -> None:
        """Write everything gathered since the last flush."""
        if self._departed:
            self._flush_departures()
        if self._public:
            self._flush_public()
        if self._private:
            self._flush_private()
        self._enforce()

    def _flush_public(self) -> None:
        batch = self._public
        self._public = []
        everything = b"".join(frame for _, frame in batch)
        # each sender gets the batch without its own lines (few senders per turn)
        own: dict[Conn, bytes] = {}
        for sender, _ in batch:
            if sender not in own:
                own[sender] = b"".join(f for s, f in batch if s is not sender)
        mine: dict[Conn, int] = {}
        for sender, _ in batch:
            mine[sender] = mine.get(sender, 0) + 1
        written = self._write_all(everything, own)
        # a sender that was written to got the batch less its own lines
        written_senders = sum(
            n
            for s, n in mine.items()
            if own[s] and s.state is PeerState.READY and not s.writer.is_closing()
        )
        self.stats.public_relayed += len(batch)
        self.stats.public_deliveries += written * len(batch) - written_senders

    def _flush_private(self) -> None:
        outbox = self._private
        self._private = {}
        for target, frames in outbox.items():
            if target.state is PeerState.READY:
                self.send_batched(target, frames[0] if len(frames) == 1 else b"".join(frames))

    def send_batched(self, conn: Conn, data: bytes) -> None:
        if conn.writer.is_closing():
            return
        conn.writer.write(data)
        self.stats.writes += 1
        self._sample(conn)

    def _flush_departures(self) -> None:
        entries = self._departed
        self._departed = []
        frames = {
            flag: b"".join(
                encode_frame(MessageType.PEERLIST, line) for line in encode_peerlist(entries, flag)
            )
            for flag in (True, False)
        }
        self._write_all(frames, {})
        self.stats.departures_sent += len(entries)

    def _write_all(self, data: bytes | dict[bool, bytes], own: dict[Conn, bytes]) -> int:
        """One write per ready peer; returns how many peers were written to."""
        count = 0
        same = data if isinstance(data, bytes) else None
        limit = self.config.max_write_buffer
        total = self.queued_total
        for conn in self.ready:
            writer = conn.writer
            if writer.is_closing():
                continue  # reset seen, connection_lost not yet run: do not write
            if same is None:
                assert isinstance(data, dict)
                chunk = data[FEATURE_PEERLIST_FEATURES in conn.features]
            else:
                chunk = own.get(conn, same) if own else same
            if not chunk:
                continue
            writer.write(chunk)
            count += 1
            size = writer.get_write_buffer_size()
            total += size - conn.queued
            conn.queued = size
            if size > limit:
                self._over.append(conn)
        self.queued_total = total
        self.stats.writes += count
        return count

    # --- limits -------------------------------------------------------------------------

    def _enforce(self) -> None:
        if self._over:
            over, self._over = self._over, []
            for conn in over:
                if conn.state is not PeerState.CLOSED:
                    self.stats.closed_slow += 1
                    self._cut(conn, "write buffer over the limit (slow reader)")
        if self.queued_total > self.config.max_queued_total:
            self._enforce_budget()

    def _enforce_budget(self) -> None:
        total = 0
        for conn in self.conns:
            conn.queued = conn.writer.get_write_buffer_size()
            total += conn.queued
        self.queued_total = total
        if total <= self.config.max_queued_total:
            return
        target = self.config.max_queued_total * 3 // 4
        for conn in sorted(self.conns, key=lambda c: c.queued, reverse=True):
            if self.queued_total <= target or conn.queued == 0:
                break
            self.stats.closed_budget += 1
            # the cut reaches forget(), which takes conn.queued off the total
            self._cut(conn, f"output budget: {conn.queued} bytes queued, not draining")

    def forget(self, conn: Conn) -> None:
        """``conn`` is gone: its queue no longer counts."""
        self.queued_total -= conn.queued
        conn.queued = 0
