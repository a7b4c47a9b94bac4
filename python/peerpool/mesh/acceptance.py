"""Which incoming messages the pools accept, and why the others are rejected.

A message is accepted only if all of these hold (issue 11):

1. its bytes decode as a ``Msg`` (``bad_message`` otherwise);
2. the secure channel authenticated a sender: the peer of a direct message,
   the signed author (``source``) of a topic message (``unsigned`` if a topic
   message has none);
3. ``Msg.sender`` equals that authenticated sender (``sender_mismatch``);
4. the sender is in a pool, or in the allowed set the caller passes
   (``not_in_pool``);
5. its token verifies for that sender (``no_token``, ``expired``, ``forged``,
   ``missing_exp``, ``wrong_peer``, ``unbound``, ``malformed``,
   ``no_verifier`` when no public key was configured).

Sans-I/O: :class:`MessageGate` decides and counts; the pools act (drop the
message, and disconnect a direct peer whose message is forged, undecodable or
claims another sender).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass

from peerpool.errors import MeshMessageError, TokenError
from peerpool.mesh.messages import MAX_MESSAGE_SIZE, Msg
from peerpool.mesh.tokens import (
    FORGED,
    NO_VERIFIER,
    TokenClaims,
    TokenVerifier,
    split_piggyback,
)

log = logging.getLogger(__name__)

BAD_MESSAGE = "bad_message"
UNSIGNED = "unsigned"
SENDER_MISMATCH = "sender_mismatch"
NOT_IN_POOL = "not_in_pool"
# a direct peer that sends these misbehaves (it is not a matter of timing or config)
DISCONNECT_REASONS = frozenset({BAD_MESSAGE, SENDER_MISMATCH, FORGED})


@dataclass(frozen=True)
class Accepted:
    msg: Msg
    sender: str
    claims: TokenClaims
    token: str
    inspector_bit: str


@dataclass(frozen=True)
class Rejected:
    reason: str
    sender: str | None
    detail: str


class MessageGate:
    """Checks messages in the order above; counts every rejection by reason."""

    def __init__(
        self,
        verifier: TokenVerifier | None,
        *,
        max_message_size: int = MAX_MESSAGE_SIZE,
    ) -> None:
        self.verifier = verifier
        self.max_message_size = max_message_size
        self.rejections: Counter[str] = Counter()
        self.accepted = 0

    def check(
        self,
        payload: bytes,
        authenticated: str | None,
        is_member: Callable[[str], bool],
        allowed: Collection[str] | None = None,
    ) -> Accepted | Rejected:
        try:
            msg = Msg.from_bytes(payload, max_size=self.max_message_size)
        except MeshMessageError as exc:
            return self._reject(BAD_MESSAGE, authenticated, str(exc))
        if authenticated is None:
            return self._reject(UNSIGNED, None, "topic message without a signed author")
        if msg.sender != authenticated:
            return self._reject(
                SENDER_MISMATCH,
                authenticated,
                f"Msg.sender {msg.sender[:20]!r} is not the authenticated {authenticated}",
            )
        if not is_member(authenticated) and (allowed is None or authenticated not in allowed):
            return self._reject(NOT_IN_POOL, authenticated, "sender is in no pool")
        if self.verifier is None:
            return self._reject(NO_VERIFIER, authenticated, "no public key to verify tokens with")
        try:
            token, bit = split_piggyback(msg.piggyback)
            claims = self.verifier.verify(token, authenticated)
        except TokenError as exc:
            return self._reject(exc.reason, authenticated, str(exc))
        self.accepted += 1
        return Accepted(msg, authenticated, claims, token, bit)

    def _reject(self, reason: str, sender: str | None, detail: str) -> Rejected:
        self.rejections[reason] += 1
        log.info("message from %s rejected (%s): %s", sender, reason, detail)
        return Rejected(reason, sender, detail)
