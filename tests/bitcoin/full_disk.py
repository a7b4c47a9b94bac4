"""A folder on a full disk, for the tests of what a failing write does.

As root (the project's test machine) it is a real one: a 64 KiB tmpfs mounted
for the test and filled up, so writes fail with ENOSPC from the kernel.
Elsewhere the same ENOSPC is injected where files are written (``os.fsync``
and ``os.replace`` raise it), which is what a full disk looks like to the code.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _no_space(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@contextlib.contextmanager
def full_disk(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Yields ``folder`` (created, empty) once writing to it fails."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    try:
        if mounted:
            with contextlib.suppress(OSError), (folder / "filler").open("wb") as f:
                while True:
                    f.write(bytes(4096))
                    f.flush()
        else:
            monkeypatch.setattr(os, "fsync", _no_space)
            monkeypatch.setattr(os, "replace", _no_space)
        yield folder
    finally:
        monkeypatch.undo()
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=False)
