from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from peerpool.mesh import MeshNode
from tests.mesh.harness import NodeProcess


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
