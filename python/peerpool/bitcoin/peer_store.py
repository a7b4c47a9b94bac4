"""``PeerStore``: what we know of each peer, in ``peers.<network>.json``.

For each ``host:port``: when it was last connected, consecutive failures, and
whether it is banned (reason, until when). Banned peers are skipped until the
ban expires. Writes are atomic: a temporary file in the same folder, fsynced,
then renamed over the old one, so a crash leaves either the old or the new
file, never half of one. Safe to use from several threads.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from peerpool.errors import InputError

#: How long a misbehaving peer is banned by default: a day, as Bitcoin Core's
#: DEFAULT_MISBEHAVING_BANTIME.
DEFAULT_BAN_SECONDS = 24 * 60 * 60


@dataclass
class PeerRecord:
    last_connected: float | None = None
    last_attempt: float | None = None
    failures: int = 0
    banned_until: float | None = None
    ban_reason: str | None = None


class PeerStore:
    def __init__(
        self,
        folder: str | Path,
        network: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(folder) / f"peers.{network}.json"
        self._clock = clock
        self._lock = threading.RLock()
        self._peers: dict[str, PeerRecord] = {}
        if self.path.exists():
            self._peers = self._read()

    def _read(self) -> dict[str, PeerRecord]:
        try:
            raw = json.loads(self.path.read_text())
            return {peer: PeerRecord(**fields) for peer, fields in raw["peers"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{self.path}: not a peer store ({exc})") from exc

    def _save(self) -> None:
        data = {"version": 1, "peers": {p: asdict(r) for p, r in sorted(self._peers.items())}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _record(self, peer: str) -> PeerRecord:
        return self._peers.setdefault(peer, PeerRecord())

    def record_attempt(self, peer: str) -> None:
        with self._lock:
            self._record(peer).last_attempt = self._clock()
            self._save()

    def record_connected(self, peer: str) -> None:
        with self._lock:
            rec = self._record(peer)
            rec.last_connected = rec.last_attempt = self._clock()
            rec.failures = 0
            self._save()

    def record_failure(self, peer: str) -> None:
        with self._lock:
            rec = self._record(peer)
            rec.failures += 1
            rec.last_attempt = self._clock()
            self._save()

    def ban(self, peer: str, reason: str, seconds: float = DEFAULT_BAN_SECONDS) -> None:
        with self._lock:
            rec = self._record(peer)
            rec.banned_until = self._clock() + seconds
            rec.ban_reason = reason
            self._save()

    def unban(self, peer: str) -> None:
        with self._lock:
            rec = self._record(peer)
            rec.banned_until = rec.ban_reason = None
            self._save()

    def is_banned(self, peer: str) -> bool:
        with self._lock:
            rec = self._peers.get(peer)
            return bool(rec and rec.banned_until and rec.banned_until > self._clock())

    def get(self, peer: str) -> PeerRecord | None:
        with self._lock:
            rec = self._peers.get(peer)
            return None if rec is None else PeerRecord(**asdict(rec))

    def usable(self, peers: list[str]) -> list[str]:
        """The given peers minus the banned ones, in order."""
        return [p for p in peers if not self.is_banned(p)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._peers)
