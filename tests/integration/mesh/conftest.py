"""Fixtures of the mesh integration tests: JSON-line peer processes and network namespaces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from tests.integration.mesh.jsonl_proc import JsonLineProcess
from tests.integration.mesh.netns import Topology, three_namespaces

PeerFactory = Callable[..., Awaitable[JsonLineProcess]]


@pytest.fixture
async def pylibp2p() -> AsyncIterator[PeerFactory]:
    """``await pylibp2p(*args, prefix=())`` starts a py-libp2p peer process; all stop at teardown."""
    procs: list[JsonLineProcess] = []

    async def start(*args: str, prefix: tuple[str, ...] = ()) -> JsonLineProcess:
        proc = await JsonLineProcess.pylibp2p(*args, prefix=prefix)
        procs.append(proc)
        return proc

    yield start
    await asyncio.gather(*(p.close() for p in procs))


@pytest.fixture
def netns_topology() -> Iterator[Topology]:
    """Three private namespaces (private node, relay, dialer); removed even if the test fails."""
    with three_namespaces() as topo:
        yield topo
