"""Test support that uses real components: a Bitcoin SV regtest node and real blocks for it.

Used by peerpool's integration tests and ``make demo``; applications may use it
for their own tests. Nothing here is imported by the library itself.
"""

from peerpool.testing.regtest import RegtestNode, find_bitcoind, free_port

__all__ = ["RegtestNode", "find_bitcoind", "free_port"]
