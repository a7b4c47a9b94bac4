"""peerpool: pools of peer-to-peer connections, with the hot paths in Rust."""

from peerpool.errors import PeerpoolError

__all__ = ["PeerpoolError", "__version__"]
__version__ = "0.1.0"
