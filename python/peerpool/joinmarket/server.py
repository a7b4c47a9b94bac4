"""A JoinMarket-compatible directory node on asyncio.

The logic lives in :class:`~peerpool.joinmarket.server_core.DirectoryCore`;
this module only pumps bytes between it and asyncio transports. It uses
``asyncio.Protocol`` rather than streams because the relay is the hot path:
``data_received`` hands bytes straight to the core, which writes the same
encoded line to every recipient's transport. To publish it as an onion
service, point Tor's ``HiddenServicePort`` (or stem's
``create_ephemeral_hidden_service``) at the bound port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from types import TracebackType
from typing import TYPE_CHECKING, Self

from peerpool.joinmarket.identity import NickIdentity
from peerpool.joinmarket.logsummary import CauseSummary
from peerpool.joinmarket.server_core import DirectoryCore
from peerpool.joinmarket.server_state import Conn, ServerConfig, ServerStats

if TYPE_CHECKING:
    from peerpool.joinmarket.http_status import StatusEndpoint

log = logging.getLogger(__name__)
# one process-wide summary: a bug hit by every peer must not log once per peer
_internal_errors = CauseSummary(log, "directory internal errors", level=logging.ERROR)

# Ask for a deep accept queue; the kernel caps it at net.core.somaxconn. The
# 1,000-clients-at-once figure needs more than asyncio's default of 100.
DEFAULT_BACKLOG = 4096


class _Connection(asyncio.Protocol):
    __slots__ = ("conn", "core")

    def __init__(self, core: DirectoryCore) -> None:
        self.core = core
        self.conn: Conn | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # small interactive lines: do not wait for Nagle to coalesce them
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        addr = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.conn = self.core.open(transport, addr)

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            self.core.feed(conn, data)
        except Exception as exc:
            # the core raises nothing for bad input (the fuzz tests hold it to
            # that); should a bug slip through, this peer is cut and counted
            self.core.stats.closed_bad_input += 1
            self.core.close(conn, f"internal error on input: {type(exc).__name__}", abort=True)
            _internal_errors.add(f"{type(exc).__name__}: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.core.lost(self.conn)
            self.conn = None


class DirectoryServer:
    """Serve the onion message channel protocol on ``host:port``.

    ``port=0`` binds a free port (see :attr:`port` after :meth:`start`). Nick
    authentication (JMP-0005) is offered when ``directory_id`` is given.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5222,
        network: str = "mainnet",
        *,
        directory_id: str | None = None,
        identity: NickIdentity | None = None,
        config: ServerConfig | None = None,
        backlog: int = DEFAULT_BACKLOG,
        tick_interval: float = 5.0,
        summary_interval: float = 60.0,
        http_port: int | None = None,
        http_host: str = "127.0.0.1",
    ) -> None:
        """``http_port`` serves ``/health`` and ``/status`` there (off when None;
        0 picks a free port, see :attr:`http_port` after :meth:`start`)."""
        if config is None:
            config = ServerConfig(network=network, directory_id=directory_id)
        self.config = config
        self.core = DirectoryCore(config, identity)
        self.host = host
        self._port = port
        self.backlog = backlog
        self.tick_interval = tick_interval
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._http: StatusEndpoint | None = None
        self._http_port = http_port
        self._http_host = http_host
        # closes are logged per cause and interval, never one line per peer
        self.closes = CauseSummary(log, "directory closed connections", interval=summary_interval)
        self.core.close_listeners.append(lambda _conn, reason: self.closes.add(reason))

    @property
    def nick(self) -> str:
        """The directory's own nick (from its identity)."""
        return self.core.identity.nick

    @property
    def stats(self) -> ServerStats:
        """Live counters: peers by state, messages relayed and dropped, connections closed by cause."""
        return self.core.stats

    @property
    def directory_id(self) -> str | None:
        """The JMP-0005 identity; setting it turns nick auth on for new handshakes."""
        return self.config.directory_id

    @directory_id.setter
    def directory_id(self, value: str | None) -> None:
        self.core.set_directory_id(value)

    @property
    def port(self) -> int:
        """The port listened on (the one bound when ``port=0`` was asked, once started)."""
        return self._port

    @property
    def listening(self) -> bool:
        """True while the server accepts connections."""
        return self._server is not None and self._server.is_serving()

    @property
    def http_port(self) -> int | None:
        """The port of the ``/health`` and ``/status`` endpoint (None when it is off)."""
        return self._http.port if self._http is not None else self._http_port

    @property
    def address(self) -> str:
        """``host:port`` as clients dial it."""
        return f"{self.host}:{self._port}"

    async def start(self) -> None:
        """Start listening (and the ``/health`` endpoint when ``http_port`` is set);
        returns once the socket is bound (see :attr:`port` when it was 0).

        Raises:
            OSError: the address cannot be bound (the port is in use, say).
        """
        loop = asyncio.get_running_loop()
        # every read of one loop turn, and every departure, share one flush
        self.core.set_schedule(loop.call_soon, loop.call_later)
        self._server = await loop.create_server(
            lambda: _Connection(self.core),
            self.host,
            self._port,
            backlog=self.backlog,
            reuse_address=True,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self._ticker = asyncio.create_task(self._tick_forever(), name="jm-directory-tick")
        if self._http_port is not None:
            from peerpool.joinmarket.http_status import StatusEndpoint

            self._http = StatusEndpoint(self, self._http_host, self._http_port)
            await self._http.start()
        log.info("directory %s listening on %s (%s)", self.nick, self.address, self.config.network)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self.core.tick()
                self.closes.emit_due()
            except Exception:  # a bug in one tick must not stop the timers
                log.exception("directory tick failed")

    async def serve_forever(self) -> None:
        """``start()`` if needed, then serve until cancelled; closes the server on the way out.

        Raises:
            OSError: the address cannot be bound.
        """
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            await self._server.serve_forever()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop listening, say goodbye to every peer and close their connections."""
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._server is not None:
            self._server.close()
            self.core.close_all()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
