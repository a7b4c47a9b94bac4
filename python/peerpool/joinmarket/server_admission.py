"""Who the directory lets in: the 793 handshake and JMP-0005 nick auth.

Kept apart from the relay (:mod:`peerpool.joinmarket.server_core`) because its
rules are the security policy: which nick a connection may hold and when.

* Without a directory id the server cannot check nicks: the first connection
  to claim a nick holds it ("nick ... is in use" for the next).
* With one, a peer that advertises ``nick_auth`` is challenged (803) and
  answers with a proof (805). A peer that proves a nick takes it, whoever
  held it before: only the owner of the key can prove it, so a squatter (an
  unproven peer, or one that advertised nick_auth and never answers) is cut
  the moment the owner proves. Until then the squatter is served as before
  (prefer-verified), unless ``require_verified`` refuses unproven peers with
  code ``policy``.
* A proof later than ``nick_auth_timeout`` is ``expired``; a bad shape is
  ``malformed``, a wrong signature ``invalid``. Every failure is answered with
  its 807 code and the connection closed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from peerpool.errors import JoinMarketProtocolError, NickAuthError
from peerpool.joinmarket.identity import JM_VERSION, is_valid_nick
from peerpool.joinmarket.messages import (
    APP_NAME,
    FEATURE_NICK_AUTH,
    ClientHandshake,
    DirectoryHandshake,
)
from peerpool.joinmarket.nickauth import (
    RESULT_CODES,
    NickAuthChallenge,
    NickAuthProof,
    NickAuthResult,
)
from peerpool.joinmarket.server_state import Conn, PeerState, valid_location
from peerpool.joinmarket.wire import MessageType, encode_frame

if TYPE_CHECKING:
    from peerpool.joinmarket.server_core import DirectoryCore

log = logging.getLogger(__name__)

RESULT_FRAMES = {
    code: encode_frame(MessageType.NICK_AUTH_RESULT, NickAuthResult(code, code == "ok").to_line())
    for code in RESULT_CODES
}
DISCONNECT_FRAME = encode_frame(MessageType.DISCONNECT, "")


def refuse(core: DirectoryCore, conn: Conn, reason: str, code: str | None = None) -> None:
    """A 795 with ``accepted: false`` (every client understands it), and for a
    refusal by nick-auth policy the 807 code too, then close."""
    core.stats.rejected += 1
    answer = DirectoryHandshake(
        core.identity.nick, core.config.network, False, reason, core.features
    )
    conn.writer.write(encode_frame(MessageType.DN_HANDSHAKE, answer.to_line()))
    if code is not None:
        core.stats.nick_auth_failed += 1
        conn.writer.write(RESULT_FRAMES[code])
    core.close(conn, f"handshake refused: {reason}")


def fail_auth(core: DirectoryCore, conn: Conn, code: str, reason: str) -> None:
    core.stats.nick_auth_failed += 1
    conn.writer.write(RESULT_FRAMES[code])
    core.close(conn, f"nick auth {code}: {reason}")


def handshake(core: DirectoryCore, conn: Conn, line: str) -> None:
    try:
        hs = ClientHandshake.from_line(line)
    except JoinMarketProtocolError as exc:
        refuse(core, conn, f"malformed handshake: {exc}")
        return
    cfg = core.config
    checks_nicks = cfg.directory_id is not None
    proves = checks_nicks and FEATURE_NICK_AUTH in hs.features
    holder = core.by_nick.get(hs.nick)
    reason = ""
    # joinmarket-ng compares the app name without case; so do we (it costs nothing)
    if hs.app_name.lower() != APP_NAME:
        reason = f"unknown app-name {hs.app_name[:40]!r}"
    elif hs.directory:
        reason = "directories do not peer with each other here"
    elif hs.proto_ver != JM_VERSION:
        reason = f"protocol version {hs.proto_ver} unsupported"
    elif hs.network != cfg.network:
        reason = f"wrong network {hs.network[:20]!r}, this is {cfg.network}"
    elif not is_valid_nick(hs.nick):
        reason = "malformed nick"
    elif hs.nick == core.identity.nick or (holder is not None and not proves):
        reason = f"nick {hs.nick} is in use"
    elif not valid_location(hs.location):
        reason = "malformed location-string"
    if reason:
        refuse(core, conn, reason)
        return
    if cfg.require_verified and not proves:
        refuse(core, conn, "policy: this directory requires nick authentication", "policy")
        return
    conn.nick = hs.nick
    conn.location = hs.location
    conn.features = hs.features
    conn.handshake_line = line
    if holder is None:
        core.by_nick[hs.nick] = conn
    # else: a contender, authenticated beside the holder; it takes the nick by proof
    answer = DirectoryHandshake(core.identity.nick, cfg.network, True, cfg.motd, core.features)
    core.send(conn, encode_frame(MessageType.DN_HANDSHAKE, answer.to_line()))
    if conn.state is PeerState.CLOSED:
        return
    if proves:
        assert cfg.directory_id is not None
        conn.challenge = NickAuthChallenge.fresh(cfg.directory_id)
        conn.auth_deadline = core.clock() + cfg.nick_auth_timeout
        conn.state = PeerState.AUTHENTICATING
        core.send(conn, encode_frame(MessageType.NICK_AUTH_CHALLENGE, conn.challenge.to_line()))
    else:
        make_ready(core, conn)


def proof(core: DirectoryCore, conn: Conn, line: str) -> None:
    assert conn.challenge is not None
    if core.clock() > conn.auth_deadline:
        fail_auth(core, conn, "expired", "proof arrived too late")
        return
    try:
        NickAuthProof.from_line(line).verify(conn.challenge, conn.handshake_line, conn.nick)
    except NickAuthError as exc:
        fail_auth(core, conn, "invalid", str(exc))
        return
    except JoinMarketProtocolError as exc:
        fail_auth(core, conn, "malformed", str(exc))
        return
    holder = core.by_nick.get(conn.nick)
    core.by_nick[conn.nick] = conn
    if holder is not None and holder is not conn:
        # the nick is now ours before the holder goes, so its leaving is no departure
        core.stats.displaced += 1
        log.debug("%s proved nick %s; cutting the connection that held it", conn.addr, conn.nick)
        if holder.state is PeerState.READY and not holder.writer.is_closing():
            holder.writer.write(DISCONNECT_FRAME)
        core.close(holder, "displaced by the nick's proven owner")
    conn.verified = True
    core.stats.nick_auth_verified += 1
    core.send(conn, RESULT_FRAMES["ok"])
    if conn.state is not PeerState.CLOSED:
        make_ready(core, conn)


def expire_overdue(core: DirectoryCore, conn: Conn, now: float) -> bool:
    """Cut a peer whose proof is overdue (``expired``); True when it was cut."""
    if conn.state is PeerState.AUTHENTICATING and now > conn.auth_deadline:
        fail_auth(core, conn, "expired", "no proof in time")
        return True
    return False


def make_ready(core: DirectoryCore, conn: Conn) -> None:
    conn.state = PeerState.READY
    conn.challenge = None
    core.ready.append(conn)
    core.peerlist_changed()
    core.stats.accepted += 1
