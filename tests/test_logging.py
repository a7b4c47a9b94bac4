"""The package logger has a NullHandler: an application that configures no
logging does not get peerpool's warnings printed by Python's last resort."""

from __future__ import annotations

import subprocess
import sys


def test_warnings_are_silent_without_logging_configured() -> None:
    code = (
        "import logging, peerpool\n"
        "logging.getLogger('peerpool.bitcoin.sync').warning('should not be printed')\n"
        "logging.getLogger('elsewhere').warning('printed by the last resort')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "should not be printed" not in done.stderr
    assert "printed by the last resort" in done.stderr  # the check itself can see output
