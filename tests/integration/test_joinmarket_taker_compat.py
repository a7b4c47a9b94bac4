"""A taker's message flow, ported as it is written against joinmarket-ng's
``MultiDirectoryClient``, run on ours (issue 8.3): only the compatibility names
are used for the taker (``neutrino_compat``, ``connect_all``,
``is_nick_active``, ``sync_nicks_with_peerlist``, ``send_privmsg`` returning
the channel, ``wait_for_response``). Two of our directories on 127.0.0.1 and
makers that are real directory-client pools."""

from __future__ import annotations

import pytest

from peerpool.errors import DirectoryConnectionError
from peerpool.joinmarket import DirectoryClient, DirectoryServer, MultiDirectoryClient
from peerpool.joinmarket.protocol import PrivateMessage
from tests.integration.test_joinmarket_load import until
from tests.integration.test_joinmarket_pool import directories
from tests.joinmarket.helpers import identity
from tests.joinmarket.makers import Maker

TAKER = 60


async def test_taker_flow_on_the_compatibility_names() -> None:
    async with directories(2) as (a, b):
        good = await Maker(1, [a.address, b.address]).start()
        refusing = await Maker(2, [b.address], refuse=True).start()
        left: list[str] = []
        taker = MultiDirectoryClient(
            [a.address, b.address],
            "regtest",
            identity=identity(TAKER),
            neutrino_compat=True,
            on_nick_leave=left.append,
        )
        assert await taker.connect_all() == 2

        # the directories see the feature in our handshake (and list it)
        observer = DirectoryClient(a.address, "regtest", identity=identity(70))
        await observer.connect()
        listed = await observer.get_peerlist(quiet=0.3)
        assert "neutrino_compat" in listed[taker.nick].features

        offers = await taker.fetch_orderbook(quiet=0.5, max_wait=10)
        assert {o.counterparty for o in offers} == {good.nick, refusing.nick}
        assert taker.is_nick_active(good.nick) and taker.is_nick_active(refusing.nick)

        # !fill to each maker, then wait for each one's !pubkey
        channels = {}
        for maker in (good.nick, refusing.nick):
            channels[maker] = await taker.send_privmsg(maker, "fill", "0 100000", log_routing=True)
            assert channels[maker].startswith("directory:")
            reply = await taker.wait_for_response(maker, "pubkey", timeout=10)
            assert isinstance(reply, PrivateMessage) and reply.data == "maker-session-key"

        # the session stays on its channel: !auth forced through the same one
        for maker in (good.nick, refusing.nick):
            used = await taker.send_privmsg(maker, "auth", "proof", force_channel=channels[maker])
            assert used == channels[maker]
        ioauth = await taker.wait_for_response(good.nick, "ioauth", timeout=10)
        assert ioauth is not None and ioauth.data == "utxos"
        refused = await taker.wait_for_response(refusing.nick, "ioauth", timeout=10)
        assert refused is not None and refused.command == "error" and refused.data == "refused"

        await taker.send_privmsg(good.nick, "tx", "unsigned")
        sig = await taker.wait_for_response(good.nick, "sig", timeout=10)
        assert sig is not None and sig.data == "signature-0"
        # nothing more comes: a timeout is None, not an exception
        assert await taker.wait_for_response(good.nick, "sig", timeout=0.3) is None

        # the refusing maker goes away; a fresh peerlist of b says so
        await refusing.stop()
        b_node = next(node for node in taker.clients if node.endswith(str(b.port)))
        await until(lambda: refusing.nick not in taker.clients[b_node].peers, 10)
        taker.sync_nicks_with_peerlist(b_node, [good.nick, taker.nick])
        assert not taker.is_nick_active(refusing.nick) and refusing.nick in left
        # a peerlist that no longer lists the good maker on b: it is still on a
        taker.sync_nicks_with_peerlist(b_node, [taker.nick])
        assert taker.is_nick_active(good.nick) and good.nick not in left
        with pytest.raises(DirectoryConnectionError):
            taker.sync_nicks_with_peerlist("nowhere:1", [])

        await observer.close()
        await good.stop()
        await taker.close_all()


async def test_without_neutrino_compat_the_feature_is_not_advertised() -> None:
    async with DirectoryServer("127.0.0.1", 0, "regtest") as server:
        taker = MultiDirectoryClient([server.address], "regtest", identity=identity(TAKER))
        assert await taker.connect_all() == 1
        assert "neutrino_compat" not in taker.connected_clients()[0].protocol.features
        await taker.close_all()
