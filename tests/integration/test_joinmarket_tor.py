"""A DirectoryServer published as an onion on the private Tor network, reached by
pools of clients through the client's SOCKS port, with nick auth bound to the
onion and stream isolation checked in Tor's own circuit table."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from peerpool.joinmarket import DirectoryServer, MultiDirectoryClient
from peerpool.joinmarket.protocol import NickAuthMode
from peerpool.net import StreamIsolation
from tests.integration.conftest import TorNetwork
from tests.joinmarket.helpers import identity
from tests.joinmarket.makers import DirectListener, Maker

pytestmark = [
    pytest.mark.tor,
    pytest.mark.filterwarnings("ignore:setDaemon:DeprecationWarning"),  # stem 1.8
]

WAIT = 120.0
VIRTUAL_PORT = 5222


@contextlib.asynccontextmanager
async def onion_service(network: TorNetwork, target_port: int) -> AsyncIterator[str]:
    """Publish 127.0.0.1:target_port as ``<onion>:5222`` for the block's duration."""
    from stem.control import Controller

    def publish() -> tuple[Any, str]:
        ctl = Controller.from_port(address="127.0.0.1", port=network.hs_control_port)
        ctl.authenticate()
        reply = ctl.create_ephemeral_hidden_service(
            {VIRTUAL_PORT: f"127.0.0.1:{target_port}"},
            key_type="NEW",
            key_content="ED25519-V3",
            await_publication=True,
            timeout=WAIT,
        )
        return ctl, f"{reply.service_id}.onion"

    ctl, onion = await asyncio.wait_for(asyncio.to_thread(publish), WAIT + 10)
    try:
        yield onion
    finally:
        await asyncio.to_thread(ctl.close)  # an ephemeral service dies with its control link


def circuits_by_username(network: TorNetwork, token: str) -> dict[str, dict[str, str]]:
    """SOCKS username -> {stream target: circuit id} for circuits carrying ``token``."""
    with network.controller() as ctl:
        streams = ctl.get_info("stream-status")  # type: ignore[attr-defined]
        circuits = {c.id: c for c in ctl.get_circuits()}  # type: ignore[attr-defined]
    found: dict[str, dict[str, str]] = {}
    for line in streams.splitlines():
        _, status, circ_id, target = line.split()[:4]
        circuit = circuits.get(circ_id)
        if status != "SUCCEEDED" or circuit is None or circuit.socks_password != token:
            continue
        found.setdefault(circuit.socks_username, {})[target] = circ_id
    return found


async def test_onion_directory_with_nick_auth_orderbook_and_isolated_direct_session(
    tor_network: TorNetwork,
) -> None:
    listener = await DirectListener().start()
    async with contextlib.AsyncExitStack() as stack:
        server = DirectoryServer("127.0.0.1", 0, "regtest")
        await server.start()
        stack.push_async_callback(server.close)
        dir_onion = await stack.enter_async_context(onion_service(tor_network, server.port))
        maker_onion = await stack.enter_async_context(onion_service(tor_network, listener.port))
        stack.push_async_callback(listener.stop)
        # the directory's JMP-0005 identity is its own onion endpoint
        directory = f"{dir_onion}:{VIRTUAL_PORT}"
        server.directory_id = directory

        maker = Maker(1, [directory], location=f"{maker_onion}:{VIRTUAL_PORT}")
        maker.pool.proxy = tor_network.socks
        maker.pool.isolation = StreamIsolation(token="jm-maker")
        maker.pool.connect_timeout = WAIT
        maker.pool.client_options["connect_timeout"] = WAIT
        listener.maker = maker
        await maker.start()
        stack.push_async_callback(maker.stop)

        taker = MultiDirectoryClient(
            [directory],
            "regtest",
            identity=identity(50),
            proxy=tor_network.socks,
            isolation=StreamIsolation(token="jm-taker"),
            nick_auth=NickAuthMode.REQUIRE,
            connect_timeout=WAIT,
            client_options={"connect_timeout": WAIT},
            direct_timeout=WAIT,
        )
        stack.push_async_callback(taker.close_all)
        outcome = await taker.connect_all_with_retry(timeout=WAIT)
        assert outcome.connected == [directory]
        client = taker.clients[directory]
        assert client.handshake is not None and client.handshake.nick_verified

        offers = await taker.fetch_orderbook(quiet=1.0, max_wait=WAIT)
        assert {o.key for o in offers} == {(maker.nick, 0), (maker.nick, 1)}

        await client.get_peerlist(quiet=1.0)
        assert await taker.start_session(maker.nick) == "direct"
        await taker.send_private(maker.nick, "fill", "0 100000")
        got = await taker.wait_for_responses([maker.nick], "pubkey", timeout=WAIT)
        assert [m.data for m in got[maker.nick].messages] == ["maker-session-key"]

        # both of the taker's streams are open now: Tor must carry them on
        # different circuits, the directory's under the directory credentials
        seen = await asyncio.wait_for(
            asyncio.to_thread(circuits_by_username, tor_network, "jm-taker"), WAIT
        )
        assert set(seen) == {"peerpool-directory", "peerpool-peer"}
        (dir_circuit,) = seen["peerpool-directory"].values()
        (peer_circuit,) = seen["peerpool-peer"].values()
        assert list(seen["peerpool-directory"]) == [directory]
        assert list(seen["peerpool-peer"]) == [f"{maker_onion}:{VIRTUAL_PORT}"]
        assert dir_circuit != peer_circuit
