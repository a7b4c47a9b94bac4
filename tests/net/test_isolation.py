"""Stream isolation credentials and proxy settings (no sockets)."""

from __future__ import annotations

import pytest

from peerpool.errors import AddressError, InputError
from peerpool.net import DIRECTORY, PEER, ProxyConfig, ProxyKind, SocksAuth, StreamIsolation


def test_categories_get_distinct_non_empty_credentials() -> None:
    isolation = StreamIsolation()
    directory, peer = isolation.credentials(DIRECTORY), isolation.credentials(PEER)
    custom = isolation.credentials("orderbook-watcher")
    pairs = {(c.username, c.password) for c in (directory, peer, custom)}
    assert len(pairs) == 3
    assert all(c.username and c.password for c in (directory, peer, custom))
    # stable per category: the same category shares a circuit
    assert isolation.credentials(DIRECTORY) == directory


def test_two_instances_do_not_share_credentials() -> None:
    assert StreamIsolation().credentials(PEER) != StreamIsolation().credentials(PEER)


def test_fresh_credentials_per_connection() -> None:
    isolation = StreamIsolation(fresh_per_connection=True)
    seen = {isolation.credentials(PEER) for _ in range(5)}
    assert len(seen) == 5


@pytest.mark.parametrize("category", ["", "with space", "x" * 65, "caf\u00e9", None])
def test_bad_categories_are_input_errors(category: object) -> None:
    with pytest.raises(InputError, match="category"):
        StreamIsolation().credentials(category)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("user", "", "non-empty"),  # python-socks would silently skip auth
        ("", "pass", "non-empty"),
        ("user", "p\u00e4ss", "ASCII"),
        ("user", "x" * 256, "255"),
        ("us\ner", "pass", "ASCII"),
    ],
)
def test_socks_auth_refuses_what_would_disable_or_break_auth(
    username: str, password: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        SocksAuth(username, password)


def test_credentials_stay_out_of_reprs() -> None:
    auth = StreamIsolation(token="secret-token").credentials(PEER)
    assert "secret-token" not in repr(auth)
    proxy = ProxyConfig(port=1080, username="u", password="hunter2")
    assert "hunter2" not in repr(proxy)


def test_proxy_config_validates_and_normalises() -> None:
    proxy = ProxyConfig("LOCALHOST", 9050, kind="SOCKS5")  # type: ignore[arg-type]
    assert proxy.host == "localhost" and proxy.kind is ProxyKind.SOCKS5
    assert ProxyConfig("::1", 1080).endpoint == "[::1]:1080"
    assert ProxyConfig(username="u", password="p").auth == SocksAuth("u", "p")
    assert ProxyConfig().auth is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"port": 0}, AddressError),
        ({"port": 70000}, AddressError),
        ({"host": ""}, AddressError),
        ({"host": "a:b"}, AddressError),
        ({"username": "u"}, InputError),
        ({"username": "u", "password": ""}, InputError),
        ({"kind": "socks6"}, InputError),
    ],
)
def test_bad_proxy_configs_are_typed_errors(kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        ProxyConfig(**kwargs)  # type: ignore[arg-type]


def test_proxy_cannot_be_an_onion() -> None:
    onion = "luwjiq5jo45aopao36wy54ubwiopwqozjneslnfl7f2j2tfr6j5vd6id.onion"
    with pytest.raises(InputError, match="onion"):
        ProxyConfig(onion, 9050)
