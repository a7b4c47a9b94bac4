"""The package logger has a NullHandler: an application that configures no
logging does not get peerpool's warnings printed by Python's last resort."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import peerpool


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


def test_every_module_logs_under_its_own_name() -> None:
    # A fixed name (say "peerpool.bitcoin" in bitcoin/client.py) hides which
    # module logged and stops a user from tuning one module's level: every
    # logger in the package must be logging.getLogger(__name__).
    root = Path(peerpool.__file__).parent
    fixed = []
    loggers = 0
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "getLogger"
            ):
                continue
            loggers += 1
            arg = node.args[0] if node.args else None
            if not (isinstance(arg, ast.Name) and arg.id == "__name__"):
                fixed.append(f"{path.relative_to(root)}:{node.lineno}")
    assert loggers > 20  # the walk found the package's loggers at all
    assert not fixed, f"loggers with a fixed name (use __name__): {fixed}"
