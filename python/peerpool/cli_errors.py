"""How the ``peerpool`` command reports an error: one line, naming the thing at fault.

The subcommands raise typed errors (``PeerpoolError`` subclasses, ``OSError``
with its ``filename``) that already say what went wrong and where; this turns
them into the line printed after ``peerpool COMMAND:`` and the exit code.
"""

from __future__ import annotations

import errno
import os

from peerpool.errors import PeerpoolError

EXIT_FAILED_CHECK = 1  # e.g. a merkle root that does not match (peerpool scan)
EXIT_ERROR = 2  # bad input or an error, also argparse's code for bad usage
EXIT_INTERRUPTED = 130


class CommandError(PeerpoolError):
    """A subcommand's own error: its message is printed as it is, with no class name."""


def _os_error(exc: OSError) -> str:
    reason = exc.strerror or (errno.errorcode.get(exc.errno or 0)) or str(exc)
    if exc.filename is not None:
        where = os.fsdecode(exc.filename)
        if exc.filename2 is not None:
            where += f" -> {os.fsdecode(exc.filename2)}"
        return f"{where}: {reason}"
    return reason if exc.strerror else str(exc)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` for a user: its first line, with the class name
    where the class says something the message does not."""
    if isinstance(exc, CommandError):
        text = str(exc)
    elif isinstance(exc, PeerpoolError):
        text = f"{type(exc).__name__}: {exc}"
    elif isinstance(exc, OSError):
        text = _os_error(exc)
    else:  # a bug, not the user's doing: still one line, and say how to see more
        text = f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)"
    lines = text.strip().splitlines() or [type(exc).__name__]
    return lines[0] + (" (more with -v)" if len(lines) > 1 else "")
