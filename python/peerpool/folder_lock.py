"""One writer per data folder: an ``fcntl`` lock on ``FOLDER/.lock``.

The lock file holds the owner's pid and what it is (``peerpool sync``), so the
second process can say who holds the folder. The kernel drops the lock when
its holder exits however it exits, so a crashed run never leaves the folder
locked; the stale pid left in the file is only read while the lock is held.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import IO

from peerpool.errors import FolderLockedError

LOCK_NAME = ".lock"


class FolderLock:
    """``with FolderLock(folder, "peerpool sync"):`` creates ``folder`` if needed
    and holds its lock; raises FolderLockedError (naming the holder) when
    another process has it, and OSError naming the path when the folder cannot
    be used at all (a file, no permission, /proc)."""

    def __init__(self, folder: Path, owner: str) -> None:
        self.folder = Path(folder)
        self.owner = owner
        self._file: IO[str] | None = None

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    def acquire(self) -> None:
        if self.folder.exists() and not self.folder.is_dir():
            raise NotADirectoryError(20, "not a directory", str(self.folder))
        self.folder.mkdir(parents=True, exist_ok=True)
        # "a+": never truncate what the holder wrote before we know we hold it
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read(200).strip() or "another process"
            handle.close()
            raise FolderLockedError(self.folder, holder) from None
        except BaseException:
            handle.close()
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"{self.owner} (pid {os.getpid()})\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.truncate(0)
            handle.close()  # closing drops the flock

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
