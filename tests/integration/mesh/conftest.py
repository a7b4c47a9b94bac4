"""Fixtures of the mesh integration tests: our nodes (in child processes or in the test
process), py-libp2p peer processes, and network namespaces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from peerpool.mesh import MeshNode
from tests.integration.mesh.jsonl_proc import JsonLineProcess
from tests.integration.mesh.netns import Topology, three_namespaces
from tests.mesh.harness import NodeProcess

PeerFactory = Callable[..., Awaitable[JsonLineProcess]]


@pytest.fixture
async def spawn() -> AsyncIterator[Callable[..., Any]]:
    """Start node processes; all stopped (or killed) at the end of the test."""
    procs: list[NodeProcess] = []

    async def start(**config: Any) -> NodeProcess:
        p = await NodeProcess.spawn(**config)
        procs.append(p)
        return p

    yield start
    for p in procs:
        await p.stop()


@pytest.fixture
async def local() -> AsyncIterator[Callable[..., Any]]:
    """MeshNodes in the test process itself, stopped at the end."""
    nodes: list[MeshNode] = []

    async def start(**config: Any) -> MeshNode:
        n = MeshNode(**config)
        await n.start()
        nodes.append(n)
        return n

    yield start
    for n in nodes:
        await n.stop()


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
