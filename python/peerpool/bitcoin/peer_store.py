"""``PeerStore``: what we know of each peer, in ``peers.<network>.json``.

For each ``host:port``: when it was last connected and last tried, how many
connections to it failed in a row, and whether it is banned (reason, until
when). Banned peers are skipped until the ban expires.

Several processes may share a folder. Every change is a read-modify-write
under an exclusive ``fcntl.flock`` on ``peers.<network>.json.lock``: the file
is read again when another process replaced it since our last read, the one
change is applied to what is there, and the result is written to a temporary
file in the same folder, fsynced and renamed over the old one. So no process
loses another's records or bans, and a crash leaves either the old or the new
file, never half of one. Safe to use from several threads.

The file is validated when read: anything but a regular file (a FIFO, a
folder), JSON that is not this schema (a wrong type anywhere, another version,
nesting too deep to parse) is a :class:`~peerpool.errors.PeerStoreFormatError`.
A write that fails (a full disk) is a :class:`~peerpool.errors.PeerStoreWriteError`;
the change stays in memory and goes out with the next write that succeeds
(unless another process replaced the file meanwhile: its file wins).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from peerpool.errors import PeerStoreFormatError, PeerStoreWriteError

#: How long a misbehaving peer is banned by default: a day, as Bitcoin Core's
#: DEFAULT_MISBEHAVING_BANTIME.
DEFAULT_BAN_SECONDS = 24 * 60 * 60
FORMAT_VERSION = 1
#: A store of a million peers is ~150 MB of JSON; refusing more bounds what a
#: wrong path can make us read.
MAX_FILE_SIZE = 256 << 20


@dataclass
class PeerRecord:
    last_connected: float | None = None
    last_attempt: float | None = None
    failures: int = 0  # connections in a row that ended in a failure
    banned_until: float | None = None
    ban_reason: str | None = None


_TIMES = ("last_connected", "last_attempt", "banned_until")
_FIELDS = frozenset(f.name for f in fields(PeerRecord))


class PeerStore:
    """What is known of each peer of ``network``: in ``<folder>/peers.<network>.json``.

    Records, per ``host:port``, the last connection and attempt, the failures in
    a row and any ban. Every change is merged into what is on disk under an
    ``fcntl`` lock, so several processes (and threads) may share one folder.

    Args:
        folder: where the file lives (created on the first write).
        network: the network name, part of the file name.
        clock: the time source (``time.time``; tests pass their own).

    Raises:
        peerpool.errors.PeerStoreFormatError: ``folder`` is not a folder, or the
            file is not a peer store (not a regular file, not this JSON schema).
    """

    def __init__(
        self,
        folder: str | Path,
        network: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise PeerStoreFormatError(f"{folder}: the peer store's folder is not a folder")
        self.path = folder / f"peers.{network}.json"
        self._lock_path = folder / f"peers.{network}.json.lock"
        self._clock = clock
        self._lock = threading.RLock()
        self._peers: dict[str, PeerRecord] = {}
        self._seen: tuple[int, int, int] | None = None  # the file we last read
        self._refresh()

    # --- the file -------------------------------------------------------------

    def _refresh(self) -> None:
        """Read the file again if another process replaced it since we last did."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise PeerStoreFormatError(f"{self.path}: cannot be read ({exc})") from exc
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        if identity != self._seen:
            self._peers = self._read()
            self._seen = identity

    def _read(self) -> dict[str, PeerRecord]:
        try:
            # non-blocking: opening a FIFO must not wait for a writer
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise PeerStoreFormatError(f"{self.path}: cannot be read ({exc})") from exc
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PeerStoreFormatError(f"{self.path}: not a regular file")
            if st.st_size > MAX_FILE_SIZE:
                raise PeerStoreFormatError(f"{self.path}: {st.st_size} bytes, not a peer store")
            data = f.read(MAX_FILE_SIZE + 1)
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise PeerStoreFormatError(f"{self.path}: not a peer store ({exc})") from exc
        return _validate(raw, self.path)

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise PeerStoreWriteError(f"{self._lock_path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _save(self) -> None:
        data = {
            "version": FORMAT_VERSION,
            "peers": {p: asdict(r) for p, r in sorted(self._peers.items())},
        }
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise PeerStoreWriteError(
                f"{self.path}: the peer store was not written ({exc})"
            ) from exc
        st = os.stat(self.path)
        self._seen = (st.st_ino, st.st_mtime_ns, st.st_size)

    def _update(self, peer: str, change: Callable[[PeerRecord], None]) -> None:
        """Apply ``change`` to ``peer``'s record as it is on disk now, and write."""
        with self._lock, self._file_lock():
            self._refresh()
            change(self._peers.setdefault(peer, PeerRecord()))
            self._save()

    # --- changes ------------------------------------------------------------------

    def record_attempt(self, peer: str) -> None:
        """Note that a connection to ``peer`` (``host:port``) is being tried now.

        Raises:
            peerpool.errors.PeerStoreWriteError: the file could not be written (the
                change is kept in memory and goes out with the next write).
            peerpool.errors.PeerStoreFormatError: the file on disk is not a peer store.
        """
        now = self._clock()

        def change(rec: PeerRecord) -> None:
            rec.last_attempt = now

        self._update(peer, change)

    def record_connected(self, peer: str) -> None:
        """The handshake completed. Failures are not forgotten here: a
        connection that completes its handshake and then misbehaves is still
        a failure (see :meth:`record_success`)."""
        now = self._clock()

        def change(rec: PeerRecord) -> None:
            rec.last_connected = rec.last_attempt = now

        self._update(peer, change)

    def record_success(self, peer: str) -> None:
        """A connection to ``peer`` ended without its fault: the count of
        failures in a row starts again."""

        def change(rec: PeerRecord) -> None:
            rec.failures = 0

        self._update(peer, change)

    def record_failure(self, peer: str) -> None:
        """Count a failed connection to ``peer`` (one more failure in a row).

        Raises:
            peerpool.errors.PeerStoreWriteError: the file could not be written.
            peerpool.errors.PeerStoreFormatError: the file on disk is not a peer store.
        """
        now = self._clock()

        def change(rec: PeerRecord) -> None:
            rec.failures += 1
            rec.last_attempt = now

        self._update(peer, change)

    def ban(self, peer: str, reason: str, seconds: float = DEFAULT_BAN_SECONDS) -> None:
        """Ban ``peer`` for ``seconds`` (a day by default) for ``reason``; managers
        skip it until then, in every process sharing the folder.

        Raises:
            peerpool.errors.PeerStoreWriteError: the file could not be written.
            peerpool.errors.PeerStoreFormatError: the file on disk is not a peer store.
        """
        until = self._clock() + seconds

        def change(rec: PeerRecord) -> None:
            rec.banned_until = until
            rec.ban_reason = reason

        self._update(peer, change)

    def unban(self, peer: str) -> None:
        """Lift a ban on ``peer`` (nothing happens if it was not banned).

        Raises:
            peerpool.errors.PeerStoreWriteError: the file could not be written.
            peerpool.errors.PeerStoreFormatError: the file on disk is not a peer store.
        """

        def change(rec: PeerRecord) -> None:
            rec.banned_until = rec.ban_reason = None

        self._update(peer, change)

    # --- reading --------------------------------------------------------------------

    def is_banned(self, peer: str) -> bool:
        """Banned here or by another process sharing the folder (the file is
        read again when it changed: a stat per call otherwise)."""
        with self._lock:
            self._refresh()
            rec = self._peers.get(peer)
            return _banned(rec, self._clock())

    def get(self, peer: str) -> PeerRecord | None:
        """A copy of ``peer``'s record as it is on disk now, or None if the peer is unknown.

        Raises:
            peerpool.errors.PeerStoreFormatError: the file on disk is not a peer store.
        """
        with self._lock:
            self._refresh()
            rec = self._peers.get(peer)
            return None if rec is None else PeerRecord(**asdict(rec))

    def usable(self, peers: list[str]) -> list[str]:
        """The given peers minus the banned ones, in order."""
        with self._lock:
            self._refresh()
            now = self._clock()
            return [p for p in peers if not _banned(self._peers.get(p), now)]

    def peers(self) -> list[str]:
        """Every peer the store has a record of (banned ones too), in key order."""
        with self._lock:
            self._refresh()
            return sorted(self._peers)

    def remember(self, peers: list[str], *, limit: int | None = None) -> list[str]:
        """Add an empty record for each of ``peers`` the store does not know
        (peers learned from ``addr``, say), in one write; returns the ones
        added. With ``limit``, none is added once the store holds that many
        records. Raises PeerStoreWriteError when the file cannot be written."""
        with self._lock, self._file_lock():
            self._refresh()
            added = []
            for peer in peers:
                if limit is not None and len(self._peers) >= limit:
                    break
                if peer not in self._peers:
                    self._peers[peer] = PeerRecord()
                    added.append(peer)
            if added:
                self._save()
            return added

    def reload(self) -> None:
        """See what other processes wrote since our last read or write."""
        with self._lock:
            self._refresh()

    def __len__(self) -> int:
        with self._lock:
            return len(self._peers)


def _banned(rec: PeerRecord | None, now: float) -> bool:
    return bool(rec and rec.banned_until and rec.banned_until > now)


def _validate(raw: Any, path: Path) -> dict[str, PeerRecord]:
    def bad(what: str) -> PeerStoreFormatError:
        return PeerStoreFormatError(f"{path}: not a peer store: {what}")

    if not isinstance(raw, dict):
        raise bad(f"a JSON {type(raw).__name__}, not an object")
    version = raw.get("version")
    if version != FORMAT_VERSION:
        raise PeerStoreFormatError(
            f"{path}: peer store version {version!r}; this peerpool reads version {FORMAT_VERSION}"
        )
    peers = raw.get("peers")
    if not isinstance(peers, dict):
        raise bad(f"'peers' is a {type(peers).__name__}, not an object")
    records: dict[str, PeerRecord] = {}
    for peer, record in peers.items():
        if not isinstance(record, dict):
            raise bad(f"the record of {peer!r} is a {type(record).__name__}")
        unknown = set(record) - _FIELDS
        if unknown:
            raise bad(f"the record of {peer!r} has unknown fields {sorted(unknown)}")
        for name in _TIMES:
            value = record.get(name)
            if value is not None and not _is_number(value):
                raise bad(f"{peer!r}: {name} is {value!r}, not a time")
        failures = record.get("failures", 0)
        if type(failures) is not int or failures < 0:
            raise bad(f"{peer!r}: failures is {failures!r}, not a count")
        reason = record.get("ban_reason")
        if reason is not None and not isinstance(reason, str):
            raise bad(f"{peer!r}: ban_reason is {reason!r}, not text")
        records[peer] = PeerRecord(**record)
    return records


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]
