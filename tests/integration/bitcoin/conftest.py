"""Fixtures for tests against the real Bitcoin SV regtest node.

``regtest_node`` is one node for the whole session (it starts in about a
second, but the chain it accumulates is worth sharing): tests must not assume
a particular height or an empty mempool, and must leave the node running on
the same ports (``restart()`` is fine, ``close()`` is not). A test that needs
a node of its own starts a ``RegtestNode`` itself.

The binary is installed into the user cache by ``ensure_bitcoind()`` (the code
behind ``peerpool node install``; ``make setup`` runs it too); when it cannot be
installed the fixture errors with the reason instead of skipping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from peerpool.testing import RegtestNode, ensure_bitcoind
from peerpool.testing.blocks import BlockMaker


@pytest.fixture(scope="session")
def regtest_node() -> Iterator[RegtestNode]:
    with RegtestNode(binary=ensure_bitcoind()) as node:
        # a few blocks so that the chain is not just genesis
        node.generate(5)
        yield node


@pytest.fixture
def block_maker(regtest_node: RegtestNode) -> BlockMaker:
    return BlockMaker(regtest_node)
