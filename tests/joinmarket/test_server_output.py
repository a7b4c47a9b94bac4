"""Output of the directory core: per-turn batches, closing transports, the budget,
and log lines aggregated per cause (issues 9.2, 9.5, 9.6), without sockets."""

from __future__ import annotations

import logging

from peerpool.joinmarket.logsummary import CauseSummary, cause_of
from peerpool.joinmarket.peerlist import parse_peerlist
from peerpool.joinmarket.server_core import DirectoryCore
from peerpool.joinmarket.server_state import ServerConfig
from peerpool.joinmarket.wire import LineBuffer, MessageType, decode_frame, encode_frame
from tests.joinmarket.helpers import identity
from tests.joinmarket.test_server_core import Clock, Peer


def deferred_core(**kw) -> tuple[DirectoryCore, list]:
    calls: list = []
    core = DirectoryCore(ServerConfig("regtest", **kw), identity(200), clock=Clock())
    core.set_schedule(calls.append)
    return core, calls


def run_turn(calls: list) -> None:
    while calls:
        calls.pop(0)()


def test_departures_of_one_turn_are_one_write_per_peer() -> None:
    core, calls = deferred_core()
    peers = [Peer(core, n) for n in range(1, 102)]
    for p in peers:
        p.proto.start()
        core.feed(p.conn, p.proto.data_to_send())
    run_turn(calls)
    for p in peers:
        p.writer.take()
    stayer = peers[0]
    writes = stayer.writer.writes
    for p in peers[1:]:
        p.writer.abort()
        core.lost(p.conn)
    assert len(calls) == 1  # one flush scheduled for the whole storm
    run_turn(calls)
    assert stayer.writer.writes == writes + 1
    lines = [decode_frame(x) for x in LineBuffer().feed(stayer.writer.take())]
    assert all(t == MessageType.PEERLIST for t, _ in lines)
    gone = [e for _, line in lines for e in parse_peerlist(line)]
    assert len(gone) == 100 and all(e.disconnected for e in gone)
    assert core.stats.departures_sent == 100


def test_closing_transports_are_not_written() -> None:
    core, calls = deferred_core()
    a, b = Peer(core, 1), Peer(core, 2)
    for p in (a, b):
        p.proto.start()
        core.feed(p.conn, p.proto.data_to_send())
    run_turn(calls)
    b.writer.closed = True  # reset seen by the transport, connection_lost still to come
    frame = encode_frame(MessageType.PUBMSG, f"{identity(1).nick}!PUBLIC!orderbook")
    core.feed(a.conn, frame)
    run_turn(calls)  # FakeWriter asserts on any write after close


def test_public_lines_of_a_turn_share_one_write_per_recipient() -> None:
    core, calls = deferred_core()
    peers = [Peer(core, n) for n in range(1, 6)]
    for p in peers:
        p.proto.start()
        core.feed(p.conn, p.proto.data_to_send())
    run_turn(calls)
    for p in peers:
        p.writer.take()
    before = [p.writer.writes for p in peers]
    for sender in peers[:3]:
        frame = encode_frame(MessageType.PUBMSG, f"{sender.proto.nick}!PUBLIC!orderbook")
        core.feed(sender.conn, frame)
    run_turn(calls)
    assert [p.writer.writes - w for p, w in zip(peers, before, strict=True)] == [1] * 5
    got = [len(LineBuffer().feed(p.writer.take())) for p in peers]
    assert got == [2, 2, 2, 3, 3]  # senders do not get their own lines back
    assert core.stats.public_deliveries == 12


def test_budget_cuts_the_largest_backlogs_first() -> None:
    core, calls = deferred_core(max_queued_total=1000, max_write_buffer=10_000)
    peers = [Peer(core, n) for n in range(1, 6)]
    for p in peers:
        p.proto.start()
        core.feed(p.conn, p.proto.data_to_send())
    run_turn(calls)
    peers[3].writer.buffer_size = 700  # not draining
    peers[4].writer.buffer_size = 400
    peers[2].writer.buffer_size = 50
    frame = encode_frame(MessageType.PUBMSG, f"{identity(1).nick}!PUBLIC!orderbook")
    core.feed(peers[0].conn, frame)
    run_turn(calls)
    # 1,150 > 1,000: the 700 goes (450 left is under 3/4 of the budget)
    assert peers[3].writer.aborted and not peers[4].writer.aborted
    assert core.stats.closed_budget == 1
    assert core.output.queued_total == 450


def test_cause_summary_logs_one_line_per_interval(caplog) -> None:
    clock = Clock()
    summary = CauseSummary(logging.getLogger("t"), "closed", interval=10, clock=clock)
    with caplog.at_level(logging.INFO, logger="t"):
        for i in range(10_000):
            summary.add(f"handshake refused: wrong network 'x{i}'")
            summary.add(f"write buffer over the limit ({i} bytes)")
        clock.now += 11
        summary.add("handshake refused: wrong network 'y'")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3  # the first of each cause, then one summary
    assert "20001 in the last 10 s" in lines[-1]
    assert cause_of("over the limit (123 bytes)") == cause_of("over the limit (9 bytes)")
    assert cause_of("refused: x") != cause_of("timed out: x")
