"""Raw request/response on configured protocols (what the Chord DHT runs on)."""

from __future__ import annotations

import pytest

from peerpool.errors import MeshRequestError
from peerpool.mesh import Identity, MeshNode
from tests.mesh.harness import NodeProcessError, b64, unb64

pytestmark = pytest.mark.timeout(60)

PROTO = "/peerpool/test/1.0.0"


async def test_request_response_both_ways(local, spawn) -> None:
    a: MeshNode = await local(request_protocols=[PROTO])
    seen: list[tuple[str, bytes]] = []

    async def handler(peer: str, req: bytes) -> bytes:
        seen.append((peer, req))
        if req == b"boom":
            raise KeyError("no such key")
        return req[::-1]

    a.set_request_handler(PROTO, handler)
    b = await spawn(request_protocols=[PROTO])
    await a.dial(b.addr)
    assert await a.request(b.peer_id, PROTO, b"ping") == b"echo:ping"
    big = bytes(range(256)) * 4096  # 1 MiB
    assert await a.request(b.peer_id, PROTO, big) == b"echo:" + big
    with pytest.raises(MeshRequestError, match="asked to fail"):
        await a.request(b.peer_id, PROTO, b"fail")
    # and the other way, served by our handler
    assert (
        unb64(await b.call("request", peer=a.peer_id, protocol=PROTO, payload=b64(b"abc")))
        == b"cba"
    )
    with pytest.raises(NodeProcessError) as info:
        await b.call("request", peer=a.peer_id, protocol=PROTO, payload=b64(b"boom"))
    assert info.value.kind == "MeshRequestError" and "no such key" in str(info.value)
    assert seen == [(b.peer_id, b"abc"), (b.peer_id, b"boom")]


async def test_request_errors_are_typed(local, spawn) -> None:
    a: MeshNode = await local(request_protocols=[PROTO, "/peerpool/other/1.0.0"])
    b = await spawn(request_protocols=[PROTO])
    with pytest.raises(MeshRequestError, match="not connected"):
        await a.request(b.peer_id, PROTO, b"x")
    await a.dial(b.addr)
    with pytest.raises(MeshRequestError, match="not among"):
        await a.request(b.peer_id, "/peerpool/unknown/1.0.0", b"x")
    # b does not speak the other protocol
    with pytest.raises(MeshRequestError):
        await a.request(b.peer_id, "/peerpool/other/1.0.0", b"x", timeout=5)
    with pytest.raises(MeshRequestError):
        a.set_request_handler("/peerpool/unknown/1.0.0", lambda p, r: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(MeshRequestError, match="over the limit"):
        await a.request(b.peer_id, PROTO, b"x" * (5 * 1024 * 1024))
    with pytest.raises(MeshRequestError):
        await a.request(Identity.generate().peer_id, PROTO, b"x")


async def test_request_without_a_handler_is_an_error_response(local, spawn) -> None:
    a: MeshNode = await local(request_protocols=[PROTO])  # no handler set
    b = await spawn(request_protocols=[PROTO])
    await a.dial(b.addr)
    with pytest.raises(NodeProcessError, match="no handler"):
        await b.call("request", peer=a.peer_id, protocol=PROTO, payload=b64(b"x"))
