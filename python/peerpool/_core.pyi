"""Hand-written stubs of the Rust extension, checked with `python -m mypy.stubtest peerpool._core`."""

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

# --- chord ---

def chord_hashes(key: bytes | str) -> tuple[bytes, bytes, bytes, bytes, bytes]: ...
def chord_hashes_batch(
    keys: Iterable[bytes | str],
) -> tuple[
    npt.NDArray[np.uint8],
    npt.NDArray[np.uint8],
    npt.NDArray[np.uint8],
    npt.NDArray[np.uint8],
    npt.NDArray[np.uint8],
]: ...
def chord_distances(
    origins: npt.NDArray[np.uint8],
    targets: npt.NDArray[np.uint8],
    limit: bytes | None = None,
) -> npt.NDArray[np.uint8]: ...
def chord_closest_before(ids: npt.NDArray[np.uint8], key: bytes) -> int: ...
