"""The python-socks error translation, fed with errors produced by python-socks' own parser.

python-socks parses the proxy's reply (``ConnectReply.loads``) and wraps the
failure (``ProxyError(reply_error, error_code=...)``); these tests run that
real code on reply bytes for every code we name, so a python-socks release
that changes how it reports codes outside RFC 1928 makes them fail. Real
proxies (microsocks, Tor) are exercised in tests/integration.
"""

from __future__ import annotations

import pytest
from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError
from python_socks._protocols.errors import ReplyError
from python_socks._protocols.http import ConnectReply as HttpConnectReply
from python_socks._protocols.socks5 import AuthReply, ConnectReply

from peerpool.errors import DialError, DialTimeoutError, SocksAuthError, SocksError, TorOnionError
from peerpool.net.socks_errors import (
    SOCKS5_REPLIES,
    TOR_EXTENDED_REPLIES,
    reply_code,
    reply_reason,
    translate,
)


def python_socks_error(reply: bytes) -> ProxyError:
    """The ProxyError python-socks raises when a SOCKS5 server answers ``reply``."""
    try:
        ConnectReply.loads(reply)
    except ReplyError as exc:
        return ProxyError(exc, error_code=exc.error_code)
    raise AssertionError(f"python-socks accepted {reply!r}")


def reply_bytes(code: int) -> bytes:
    return bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("code", sorted(TOR_EXTENDED_REPLIES))
def test_tor_extended_codes_become_tor_onion_errors(code: int) -> None:
    error = translate(python_socks_error(reply_bytes(code)), "x.onion:80", "127.0.0.1:9050")
    assert isinstance(error, TorOnionError)
    assert isinstance(error, SocksError) and isinstance(error, DialError)
    assert error.code == code
    assert error.reason == TOR_EXTENDED_REPLIES[code]
    assert f"0x{code:02X}" in str(error) and "x.onion:80" in str(error)


@pytest.mark.parametrize("code", sorted(SOCKS5_REPLIES))
def test_rfc1928_codes_become_socks_errors(code: int) -> None:
    error = translate(python_socks_error(reply_bytes(code)), "h:1", "127.0.0.1:1080")
    assert type(error) is SocksError
    assert error.code == code
    assert error.reason == SOCKS5_REPLIES[code]


def test_unknown_code_is_still_reported_with_its_number() -> None:
    error = translate(python_socks_error(reply_bytes(0x42)), "h:1", "p:1")
    assert isinstance(error, SocksError) and error.code == 0x42
    assert "unknown SOCKS reply code 0x42" in error.reason


def test_rejected_password_is_an_auth_error() -> None:
    try:
        AuthReply.loads(b"\x01\x01")
    except ReplyError as exc:
        error = translate(ProxyError(exc), "h:1", "p:1")
    assert isinstance(error, SocksAuthError)
    assert error.code is None and "credentials" in error.reason


def test_timeouts_and_unreachable_proxies() -> None:
    assert isinstance(translate(ProxyTimeoutError("t"), "h:1", "p:1"), DialTimeoutError)
    unreachable = translate(ProxyConnectionError(111, "Could not connect [refused]"), "h:1", "p:1")
    assert isinstance(unreachable, SocksError)
    assert "cannot reach the proxy" in unreachable.reason


def test_reply_reason_and_code_helpers() -> None:
    assert reply_reason(0xF0).startswith("onion service descriptor not found")
    assert reply_code(ValueError("no code here")) is None
    assert reply_code(ProxyError("x", error_code=5)) == 5


def http_proxy_error(status_line: bytes) -> ProxyError:
    try:
        HttpConnectReply.loads(status_line + b"\r\n\r\n")
    except ReplyError as exc:
        return ProxyError(exc, error_code=exc.error_code)
    raise AssertionError(f"python-socks accepted {status_line!r}")


def test_http_proxy_statuses_are_not_read_as_socks_codes() -> None:
    auth = translate(
        http_proxy_error(b"HTTP/1.1 407 Proxy Authentication Required"), "h:1", "p:1", http=True
    )
    assert isinstance(auth, SocksAuthError) and auth.code == 407
    bad_gateway = translate(http_proxy_error(b"HTTP/1.1 502 Bad Gateway"), "h:1", "p:1", http=True)
    assert type(bad_gateway) is SocksError
    assert bad_gateway.reason == "HTTP proxy answered status 502"
