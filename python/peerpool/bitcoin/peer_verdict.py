"""What the end of a connection says about its peer, for the peer store.

Banned for proof of misbehaviour (a violation in :data:`BANNABLE`, or what
the client was told by :meth:`~peerpool.bitcoin.client.BitcoinClient.misbehaving`);
a failure for any other violation, a timeout, or an end before the
handshake completed; otherwise a success. A store that failed to write is
not the peer's doing and is not written again.

Plain functions of the error and the handshake's outcome, apart from the
client's asyncio code: the reader and the closing path both use them, and
the policy reads (and is tested) in one place.
"""

from __future__ import annotations

from peerpool.bitcoin.peer_store import PeerStore
from peerpool.errors import (
    BadMagicError,
    BitcoinProtocolError,
    ChecksumError,
    MalformedCommandError,
    MalformedMessageError,
    PeerStoreError,
    PeerTimeoutError,
)

__all__ = ["BANNABLE", "ban_reason", "record_end"]

#: Errors that mean the peer broke the protocol on purpose or is broken: banned.
BANNABLE = (BadMagicError, ChecksumError, MalformedCommandError, MalformedMessageError)


def ban_reason(error: BaseException) -> str | None:
    """The reason to ban a peer for ``error``, or None if it proves nothing."""
    if isinstance(error, BANNABLE):
        return f"{type(error).__name__}: {error}"
    return None


def record_end(
    store: PeerStore,
    peer: str,
    error: BaseException | None,
    *,
    ban_reason: str | None,
    handshake_succeeded: bool,
) -> None:
    """Record in ``store`` how ``peer``'s connection ended (``error`` None:
    we closed it); see the module for the verdicts.

    Raises:
        peerpool.errors.PeerStoreError: the store cannot be written.
    """
    if isinstance(error, PeerStoreError):
        return
    if ban_reason is not None:
        store.ban(peer, ban_reason)
    elif error is not None and (
        not handshake_succeeded or isinstance(error, (BitcoinProtocolError, PeerTimeoutError))
    ):
        store.record_failure(peer)
    elif handshake_succeeded:
        store.record_success(peer)
