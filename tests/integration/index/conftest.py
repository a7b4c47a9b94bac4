"""The regtest node fixtures of the Bitcoin integration tests, shared here."""

from tests.integration.bitcoin.conftest import block_maker, regtest_node

__all__ = ["block_maker", "regtest_node"]
