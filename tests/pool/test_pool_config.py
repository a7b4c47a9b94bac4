"""ClientPool construction: addresses parsed once, errors reported once and clearly."""

from __future__ import annotations

import logging

import pytest

from peerpool.errors import AddressError, InputError, PoolError, UnknownNodeError
from peerpool.pool import ClientPool
from tests.pool.line_client import LineClient


def test_bad_addresses_are_listed_together_at_construction() -> None:
    with pytest.raises(AddressError) as info:
        ClientPool(["127.0.0.1:1", "h:1:2", "x:99999", "", "ok.example:5"], client_factory=LineClient)
    message = str(info.value)
    assert message.startswith("3 unusable address(es)")
    for fragment in ("'h:1:2'", "99999", "empty address"):
        assert fragment in message


def test_non_strict_pool_warns_once_and_keeps_the_good_ones(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="peerpool.pool"):
        pool = ClientPool(["h:1:2", "127.0.0.1:9", "x:0"], client_factory=LineClient, strict=False)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2 unusable" in warnings[0].getMessage()
    assert list(pool.addresses) == ["127.0.0.1:9"]
    assert [text for text, _ in pool.rejected] == ["'h:1:2'", "'x:0'"]
    assert pool.list_disconnected() == ["127.0.0.1:9"]


def test_node_ids_are_canonical_and_duplicates_collapse() -> None:
    pool = ClientPool(
        [" Example.COM:80", "example.com:80", "[0:0::1]:8333", "dir.example"],
        client_factory=LineClient,
        default_port=5222,
    )
    assert list(pool.addresses) == ["example.com:80", "[::1]:8333", "dir.example:5222"]


def test_a_single_string_is_one_address_not_characters() -> None:
    pool = ClientPool("127.0.0.1:7", client_factory=LineClient)
    assert list(pool.addresses) == ["127.0.0.1:7"]


async def test_unknown_node_is_a_typed_error() -> None:
    pool = ClientPool(["127.0.0.1:7"], client_factory=LineClient)
    with pytest.raises(UnknownNodeError):
        await pool.connect_one("127.0.0.1:8")
    with pytest.raises(UnknownNodeError):
        await pool.connect_one("not an address")


async def test_pool_without_factory_says_what_to_do() -> None:
    pool: ClientPool[LineClient] = ClientPool(["127.0.0.1:7"])
    with pytest.raises(PoolError, match="client_factory"):
        await pool.connect_one("127.0.0.1:7")
    assert pool.clients == {}


def test_add_address_returns_the_canonical_id() -> None:
    pool = ClientPool([], client_factory=LineClient)
    assert pool.add_address("LOCALHOST:1") == "localhost:1"
    assert pool.add_address("localhost:1") == "localhost:1"
    with pytest.raises(AddressError):
        pool.add_address("localhost:65536")
    assert list(pool.addresses) == ["localhost:1"]


@pytest.mark.parametrize(
    "kwargs", [{"connect_timeout": 0}, {"connect_timeout": float("inf")}, {"close_timeout": -1}]
)
def test_bad_timeouts_are_input_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError, match="positive number of seconds"):
        ClientPool(["127.0.0.1:7"], client_factory=LineClient, **kwargs)  # type: ignore[arg-type]
