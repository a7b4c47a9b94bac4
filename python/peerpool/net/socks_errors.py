"""python-socks' exceptions and SOCKS reply codes, turned into our typed DialErrors.

python-socks raises ``ProxyError`` with ``error_code`` set for the RFC 1928
reply codes, but for codes outside that enum (Tor's extended errors,
0xF0-0xF7) it only says ``"Invalid reply code: 0XF0"`` in the message, so the
code is recovered from there. The integration tests against a real Tor
check that this still holds for the installed python-socks.
"""

from __future__ import annotations

import re

from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError

from peerpool.errors import DialError, DialTimeoutError, SocksAuthError, SocksError, TorOnionError

# RFC 1928 section 6, "Replies"
SOCKS5_REPLIES: dict[int, str] = {
    0x01: "general SOCKS server failure",
    0x02: "connection not allowed by the proxy's rules",
    0x03: "network unreachable",
    0x04: "host unreachable",
    0x05: "connection refused by the destination",
    0x06: "TTL expired (the destination did not answer in time)",
    0x07: "command not supported",
    0x08: "address type not supported",
}

# tor(1), SocksPort flag ExtendedErrors (proposal 304); all concern v3 onion services
TOR_EXTENDED_REPLIES: dict[int, str] = {
    0xF0: "onion service descriptor not found (service offline or never published)",
    0xF1: "onion service descriptor is invalid (cannot be parsed or badly signed)",
    0xF2: "onion service introduction failed (service gone from its introduction points)",
    0xF3: "onion service rendezvous failed (every rendezvous circuit timed out)",
    0xF4: "onion service needs client authorization, and we have none for it",
    0xF5: "onion service rejected our client authorization (revoked?)",
    0xF6: "invalid onion address (bad checksum, key or encoding)",
    0xF7: "onion service introduction timed out",
}

_CODE_IN_MESSAGE = re.compile(r"reply code:?\s*0x([0-9a-f]{1,2})\b", re.IGNORECASE)


def reply_reason(code: int) -> str:
    """Words for a SOCKS5 reply code, standard or Tor-extended."""
    return (
        SOCKS5_REPLIES.get(code)
        or TOR_EXTENDED_REPLIES.get(code)
        or f"unknown SOCKS reply code 0x{code:02X}"
    )


def reply_code(exc: BaseException) -> int | None:
    """The SOCKS reply code carried by a python-socks error, if any."""
    code = getattr(exc, "error_code", None)
    if isinstance(code, int):
        return code
    match = _CODE_IN_MESSAGE.search(str(exc))
    return int(match.group(1), 16) if match else None


def translate(
    exc: BaseException, target: str, proxy_endpoint: str, *, http: bool = False
) -> DialError:
    """Map a python-socks exception raised while dialing ``target`` to a DialError.

    ``http``: the proxy speaks HTTP CONNECT, whose error codes are HTTP statuses.
    """
    via = f"{target} via proxy {proxy_endpoint}"
    if isinstance(exc, ProxyTimeoutError):
        return DialTimeoutError(f"{via}: timed out")
    if isinstance(exc, ProxyConnectionError):
        reason = f"cannot reach the proxy: {exc.strerror or exc}"
        return SocksError(f"{via}: {reason}", reason=reason)
    if isinstance(exc, ProxyError):
        code = reply_code(exc)
        if http and code is not None:
            reason = f"HTTP proxy answered status {code}"
            cls = SocksAuthError if code == 407 else SocksError  # 407: Proxy Authentication Required
            return cls(f"{via}: {reason}", code=code, reason=reason)
        if code is not None:
            reason = reply_reason(code)
            cls = TorOnionError if code in TOR_EXTENDED_REPLIES else SocksError
            return cls(f"{via}: {reason} (SOCKS reply 0x{code:02X})", code=code, reason=reason)
        text = str(exc) or type(exc.__cause__).__name__
        if "authentication" in text.lower():
            reason = f"proxy refused our credentials ({text})"
            return SocksAuthError(f"{via}: {reason}", reason=reason)
        reason = f"proxy handshake failed ({text})"
        return SocksError(f"{via}: {reason}", reason=reason)
    return DialError(f"{via}: {type(exc).__name__}: {exc}")
