"""Running the real ``peerpool`` command in a subprocess, as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PEERPOOL = [sys.executable, "-m", "peerpool.cli"]


def peerpool(
    *args: str | Path, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PEERPOOL, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )


def one_error_line(done: subprocess.CompletedProcess[str], command: str) -> str:
    """The error a failed run printed: exactly one line on stderr, no traceback,
    exit code 2; returns the text after 'peerpool COMMAND: '."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    assert len(lines) == 1, done.stderr
    prefix = f"peerpool {command}: "
    assert lines[0].startswith(prefix), lines[0]
    return lines[0][len(prefix) :]
