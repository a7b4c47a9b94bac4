"""JMP-0005 between our DirectoryClient and our DirectoryServer over 127.0.0.1.

The three server modes (disabled, prefer-verified, require_verified), a
squatter displaced by the nick's owner (issue 9.4), a proof that comes too
late (expired) and a nick-auth message out of order (issue 8.1).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from peerpool.errors import DirectoryConnectionError, HandshakeRejectedError, NickAuthError
from peerpool.joinmarket import DirectoryClient, DirectoryServer
from peerpool.joinmarket.messages import ClientHandshake
from peerpool.joinmarket.protocol import NickAuthMode, PrivateMessage
from peerpool.joinmarket.server_state import ServerConfig
from peerpool.joinmarket.wire import LineBuffer, MessageType, decode_frame, encode_frame
from tests.joinmarket.helpers import identity

OWNER = identity(1)


async def serve(mode: str, **kw) -> DirectoryServer:
    """mode: 'disabled' (no directory id), 'prefer' or 'require'."""
    config = ServerConfig("regtest", require_verified=mode == "require", **kw)
    server = DirectoryServer("127.0.0.1", 0, config=config, tick_interval=0.1)
    await server.start()
    if mode != "disabled":
        server.directory_id = f"127.0.0.1:{server.port}"
    return server


def client(server: DirectoryServer, n: int = 1, mode=NickAuthMode.PREFER, **kw) -> DirectoryClient:
    directory_id = server.directory_id or f"127.0.0.1:{server.port}"
    return DirectoryClient(
        server.address,
        "regtest",
        identity=identity(n),
        nick_auth=mode,
        directory_id=directory_id,
        **kw,
    )


class RawPeer:
    """A socket that speaks whatever a test scripts (squatters, out-of-order peers)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.lines = LineBuffer()

    @classmethod
    async def handshake(cls, port: int, nick: str, features=frozenset()) -> RawPeer:
        peer = cls(*await asyncio.open_connection("127.0.0.1", port))
        hs = ClientHandshake(nick, "regtest", features=frozenset(features))
        peer.writer.write(encode_frame(MessageType.HANDSHAKE, hs.to_line()))
        return peer

    async def frames_until_closed(self, timeout: float = 10.0) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []

        async def read() -> None:
            while data := await self.reader.read(65536):
                out.extend(tuple(decode_frame(x)) for x in self.lines.feed(data))

        await asyncio.wait_for(read(), timeout)
        return out

    async def frames(self, count: int) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        while len(out) < count:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            if not data:
                break
            out.extend(tuple(decode_frame(x)) for x in self.lines.feed(data))
        return out

    def close(self) -> None:
        self.writer.close()


@pytest.mark.parametrize("mode", ["disabled", "prefer", "require"])
async def test_our_client_in_each_server_mode(mode: str) -> None:
    server = await serve(mode)
    try:
        verifying = client(
            server, 1, NickAuthMode.REQUIRE if mode != "disabled" else NickAuthMode.PREFER
        )
        await verifying.connect()
        assert verifying.handshake is not None
        assert verifying.handshake.nick_verified is (mode != "disabled")
        legacy = client(server, 2, NickAuthMode.OFF)
        if mode == "require":
            with pytest.raises(HandshakeRejectedError, match="policy"):
                await legacy.connect()
        else:
            await legacy.connect()
            assert legacy.handshake is not None and not legacy.handshake.nick_verified
            await legacy.send_private(OWNER.nick, "fill", "0 1")
            message = await verifying.receive(timeout=10)
            assert isinstance(message, PrivateMessage) and message.data == "0 1"
        await legacy.close()
        await verifying.close()
    finally:
        await server.close()


@pytest.mark.parametrize("advertises", [False, True])
async def test_owner_displaces_a_squatter(advertises: bool) -> None:
    server = await serve("prefer")
    try:
        # a squatter claims the owner's nick: without nick_auth it is served
        # unverified; with it, it holds the nick while never answering the challenge
        squatter = await RawPeer.handshake(
            server.port, OWNER.nick, {"nick_auth"} if advertises else set()
        )
        got = await squatter.frames(2 if advertises else 1)
        assert json.loads(got[0][1])["accepted"] is True
        owner = client(server, 1, NickAuthMode.REQUIRE)
        await asyncio.wait_for(owner.connect(), 5)  # not the 30 s handshake timeout
        assert owner.handshake is not None and owner.handshake.nick_verified
        await squatter.frames_until_closed()  # the squatter is cut
        assert server.stats.displaced == 1
        sender = client(server, 3, NickAuthMode.OFF)
        await sender.connect()
        await sender.send_private(OWNER.nick, "fill", "to the owner")
        message = await owner.receive(timeout=10)
        assert isinstance(message, PrivateMessage) and message.data == "to the owner"
        await sender.close()
        await owner.close()
        squatter.close()
    finally:
        await server.close()


async def test_a_silent_authenticator_is_expired() -> None:
    server = await serve("prefer", nick_auth_timeout=0.3)
    try:
        peer = await RawPeer.handshake(server.port, OWNER.nick, {"nick_auth"})
        got = await peer.frames_until_closed()
        assert got[-1] == (MessageType.NICK_AUTH_RESULT, '{"code":"expired","verified":false}')
        peer.close()
    finally:
        await server.close()


async def test_nick_auth_after_the_handshake_disconnects() -> None:
    server = await serve("prefer")
    try:
        peer = await RawPeer.handshake(server.port, OWNER.nick)
        (answer,) = await peer.frames(1)
        assert json.loads(answer[1])["accepted"] is True
        peer.writer.write(encode_frame(MessageType.NICK_AUTH_PROOF, '{"pubkey":"","signature":""}'))
        await peer.frames_until_closed()
        assert server.stats.closed_bad_input == 1
        peer.close()
    finally:
        await server.close()


async def test_client_refuses_a_challenge_for_another_directory() -> None:
    server = await serve("prefer")
    try:
        wrong = DirectoryClient(
            server.address,
            "regtest",
            identity=OWNER,
            nick_auth=NickAuthMode.PREFER,
            directory_id="elsewhere:5222",
        )
        with pytest.raises((NickAuthError, DirectoryConnectionError)):
            await wrong.connect()
    finally:
        await server.close()
