"""What other peers send through a directory can never kill our client (issue 9.1).

The one-line reproduction: an attacker with its own nick and key sends a
private message whose data holds a lone surrogate. JSON can carry ``\\ud800``
but UTF-8 cannot, so the signature check used to raise UnicodeEncodeError out
of the client's reader task.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from peerpool.joinmarket.client import DirectoryClient
from peerpool.joinmarket.messages import DirectoryHandshake, private_line
from peerpool.joinmarket.protocol import Dropped, PrivateMessage
from peerpool.joinmarket.wire import LineBuffer, MessageType, decode_frame, encode_frame
from tests.joinmarket.helpers import identity
from tests.joinmarket.test_protocol import ready

ATTACKER = identity(66)
VICTIM = identity(1)


def surrogate_fill(to_nick: str) -> bytes:
    """``<attacker>!<victim>!fill \\ud800 <attacker pubkey> <any sig>`` as the wire has it."""
    line = f"{ATTACKER.nick}!{to_nick}!fill \ud800 {ATTACKER.pubkey_hex} MEUCIQ=="
    # json.dumps escapes the surrogate as the six characters \ud800, as a relay would
    return json.dumps({"type": 685, "line": line}).encode("ascii") + b"\r\n"


HOSTILE_BODIES = [
    "fill \ud800 {pk} MEUCIQ==",  # lone surrogate in the signed data
    "fill 0 {pk} \udfff",  # ... in the signature
    "fill 0 \ud800{pk} MEUCIQ==",  # ... in the public key
    "fill 0 " + "²" * 66 + " MEUCIQ==",  # a "hex" key of digits that are not hex
    "fill 0 {pk} " + "A" * 5000,  # an oversized signature
]


def test_surrogate_private_message_is_dropped_by_the_core(caplog) -> None:
    proto = ready(n=1)
    with caplog.at_level(logging.DEBUG, logger="peerpool.joinmarket.protocol"):
        proto.receive_data(surrogate_fill(VICTIM.nick))
    (event,) = proto.events_received()
    assert isinstance(event, Dropped)
    assert proto.dropped == 1
    assert any("dropped" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
    # the connection carries on: a good message afterwards is delivered
    good = private_line(ATTACKER, VICTIM.nick, "fill", "0 100000")
    proto.receive_data(encode_frame(MessageType.PRIVMSG, good))
    (event,) = proto.events_received()
    assert isinstance(event, PrivateMessage) and event.data == "0 100000"


@pytest.mark.parametrize("body", HOSTILE_BODIES)
def test_hostile_private_bodies_end_as_drops(body: str) -> None:
    proto = ready(n=1)
    line = f"{ATTACKER.nick}!{VICTIM.nick}!" + body.format(pk=ATTACKER.pubkey_hex)
    proto.receive_data(json.dumps({"type": 685, "line": line}).encode() + b"\n")
    (event,) = proto.events_received()
    assert isinstance(event, Dropped)


async def _scripted_directory(
    lines: list[bytes], seen: asyncio.Queue[bytes]
) -> tuple[asyncio.Server, int]:
    """A directory that accepts the handshake and then relays ``lines`` verbatim, as
    any relay that does not look inside messages (joinmarket-ng's does not) would."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = LineBuffer()
        hello = await reader.readline()
        (raw,) = buffer.feed(hello)
        assert decode_frame(raw).type == MessageType.HANDSHAKE
        answer = DirectoryHandshake(identity(100).nick, "regtest", True)
        writer.write(encode_frame(MessageType.DN_HANDSHAKE, answer.to_line()))
        for line in lines:
            writer.write(line)
            await writer.drain()
        await seen.put(await reader.read(1 << 16))  # whatever the client says next
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_surrogate_private_message_does_not_kill_the_client() -> None:
    good = encode_frame(
        MessageType.PRIVMSG, private_line(ATTACKER, VICTIM.nick, "fill", "0 100000")
    )
    seen: asyncio.Queue[bytes] = asyncio.Queue()
    server, port = await _scripted_directory([surrogate_fill(VICTIM.nick), good], seen)
    client = DirectoryClient(f"127.0.0.1:{port}", "regtest", identity=VICTIM)
    try:
        await client.connect()
        message = await client.receive(timeout=10)
        assert isinstance(message, PrivateMessage) and message.data == "0 100000"
        assert client.connected
        assert client.dropped_invalid == 1
        # still able to talk: a ping reaches the directory
        await client.send_public("orderbook")
        said = await asyncio.wait_for(seen.get(), 10)
        assert b"orderbook" in said
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
