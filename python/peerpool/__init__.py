"""peerpool: pools of peer-to-peer connections, with the hot paths in Rust."""

import logging

from peerpool.errors import PeerpoolError

# A library configures no logging: without this, Python's last-resort handler
# would print our warnings to stderr in applications that set up none.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["PeerpoolError", "__version__"]
__version__ = "0.1.0"
"""The package version."""
