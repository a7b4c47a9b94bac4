"""The mesh node: asyncio's face of the rust-libp2p swarm in ``peerpool._core``.

The swarm runs on a runtime thread of its own (started by ``start``, joined by
``stop``). Commands go to it through the binding; each returns at once and its
answer comes back later, under the command's id, in the control queue. The
events the user reads stay in Rust's bounded queue until ``next_events`` takes
them, so a consumer that falls behind slows the senders down (the stream
readers wait, yamux stops the remote) instead of growing a queue here.

Readiness is one byte on a socketpair watched with ``loop.add_reader``: the
callback reads it, drains the control queue (replies resolve their futures,
inbound requests go to their handlers) and wakes ``next_events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal, Self

from peerpool import _core
from peerpool.errors import MeshClosedError, MeshDialError, MeshRequestError

from .events import MeshEvent, PeerInfo, event_from_tuple, peer_info
from .identity import Identity

RequestHandler = Callable[[str, bytes], Awaitable[bytes]]

# Commands awaiting their reply at once; a caller past this waits its turn.
# Bounds the replies the Rust side can have queued for us.
_MAX_IN_FLIGHT = 8192
# Extra time given to a command whose deadline the Rust side enforces, before
# Python gives up on it (only a wedged runtime thread would ever need it).
_GRACE = 5.0


class MeshNode:
    """A libp2p node, driven from asyncio (see the module docstring).

    ``async with MeshNode() as node:`` starts it (listening on 127.0.0.1 by
    default, dialing nothing by itself) and stops it at the end. Events
    (:data:`MeshEvent`) are read with ``next_events()`` or ``events()``.

    Args:
        identity: the node's key (a fresh one by default; see ``Identity.load``).
        listen: multiaddrs to listen on (``/ip4/.../tcp/0`` or ``.../udp/0/quic-v1``).
        pubsub: ``"gossipsub"``, ``"floodsub"`` or ``"none"``.
        relay_server: also serve as a circuit relay v2 for other peers.
        max_connections: total connections allowed (None: no limit).
        max_connections_per_peer: connections allowed per peer.
        request_protocols: the request/response protocols this node speaks
            (``request`` and ``set_request_handler`` take only these).
        max_message_size: the largest direct-message frame accepted, in bytes.
        event_queue_size: events held for ``next_events`` before senders wait.
        idle_timeout: seconds an unused connection is kept.
        external_addrs: addresses to announce besides the listening ones.
        max_request_size: the largest request or response accepted, in bytes.
    """

    def __init__(
        self,
        identity: Identity | None = None,
        *,
        listen: Sequence[str] = ("/ip4/127.0.0.1/tcp/0",),
        pubsub: Literal["gossipsub", "floodsub", "none"] = "gossipsub",
        relay_server: bool = False,
        max_connections: int | None = None,
        max_connections_per_peer: int | None = 2,
        request_protocols: Sequence[str] = (),
        max_message_size: int = 50 * 1024 * 1024,
        event_queue_size: int = 65_536,
        idle_timeout: float = 60.0,
        external_addrs: Sequence[str] = (),
        max_request_size: int = 4 * 1024 * 1024,
    ) -> None:
        self.identity = identity or Identity.generate()
        self._config = (
            self.identity.to_protobuf_bytes(),
            [str(a) for a in listen],
            [str(a) for a in external_addrs],
            pubsub,
            relay_server,
            max_connections,
            max_connections_per_peer,
            [str(p) for p in request_protocols],
            max_message_size,
            max_request_size,
            event_queue_size,
            idle_timeout,
        )
        self._request_protocols = frozenset(self._config[7])
        self._handle: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd = -1
        self._closed = False
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._ready: asyncio.Event | None = None
        self._handlers: dict[str, RequestHandler] = {}
        self._handler_tasks: set[asyncio.Task[None]] = set()

    # --- life cycle ------------------------------------------------------------

    async def start(self) -> None:
        """Start the swarm on its own thread and begin listening.

        Raises:
            peerpool.errors.MeshClosedError: the node was started before (a node starts once).
            peerpool.errors.MeshAddressError: a listen address is not a valid multiaddr.
        """
        if self._handle is not None or self._closed:
            raise MeshClosedError("a MeshNode starts once")
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(_MAX_IN_FLIGHT)
        self._ready = asyncio.Event()
        handle = await asyncio.to_thread(_core.MeshHandle.start, *self._config)
        self._handle = handle
        self._fd = handle.notify_fd()
        self._loop.add_reader(self._fd, self._on_wake)

    async def stop(self) -> None:
        """Stop the swarm and join its thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        handle, self._handle = self._handle, None
        if handle is None:
            return
        if self._loop is not None and self._fd >= 0:
            self._loop.remove_reader(self._fd)
        await asyncio.to_thread(handle.stop)
        self._stopped_handle = handle  # keeps the socketpair open until we are gone
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(MeshClosedError("the mesh node stopped"))
        self._pending.clear()
        for task in list(self._handler_tasks):
            task.cancel()
        if self._ready is not None:
            self._ready.set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _require(self) -> Any:
        if self._handle is None:
            raise MeshClosedError("the mesh node is not running")
        return self._handle

    # --- the wake-up callback ---------------------------------------------------

    def _on_wake(self) -> None:
        handle = self._handle
        if handle is None:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self._fd, 4096):
                pass
        # After the bytes are read, before draining: a push from now on writes a new byte.
        handle.ack()
        for item in handle.drain_control():
            if item[0] == "reply":
                _, cid, ok, value = item
                fut = self._pending.pop(cid, None)
                if fut is not None and not fut.done():
                    if ok:
                        fut.set_result(value)
                    else:
                        fut.set_exception(value)
            else:
                _, rid, peer, protocol, payload = item
                self._serve(handle, rid, peer, protocol, payload)
        assert self._ready is not None
        self._ready.set()

    # --- commands ------------------------------------------------------------------

    async def _call(self, method: str, *args: Any, deadline: float | None = None) -> Any:
        handle = self._require()
        assert self._slots is not None and self._loop is not None
        async with self._slots:
            cid = next(self._ids)
            getattr(handle, method)(cid, *args)  # bad arguments raise here, typed
            fut: asyncio.Future[Any] = self._loop.create_future()
            self._pending[cid] = fut
            try:
                if deadline is None:
                    return await fut
                return await asyncio.wait_for(fut, deadline + _GRACE)
            finally:
                self._pending.pop(cid, None)

    @property
    def peer_id(self) -> str:
        """This node's peer id (``12D3KooW...``)."""
        return self.identity.peer_id

    @property
    def listen_addrs(self) -> list[str]:
        """The addresses the node listens on, each ending in ``/p2p/<peer id>`` (dialable as they are).

        Raises:
            peerpool.errors.MeshClosedError: the node is not running.
        """
        return list(self._require().listen_addrs())

    async def dial(self, addrs: str | Sequence[str], *, timeout: float = 10.0) -> PeerInfo:
        """Connect to a peer, trying each address in turn. A ``/p2p/<id>``
        suffix is checked against the peer the secure channel authenticates
        (MeshDialError if another answers); ``/p2p/<relay>/p2p-circuit/p2p/<id>``
        goes through a relay, reached at the address of our connection to it
        (or one it reported through identify); with no connection to the relay,
        give its address in front: ``/ip4/…/tcp/…/p2p/<relay>/p2p-circuit/…``."""
        addr_list = [addrs] if isinstance(addrs, str) else [str(a) for a in addrs]
        try:
            facts = await self._call("dial", addr_list, timeout, deadline=timeout)
        except asyncio.TimeoutError as exc:
            raise MeshDialError("dial timed out") from exc
        return peer_info(facts)

    async def disconnect(self, peer_id: str) -> None:
        """Close every connection to ``peer_id`` (nothing happens if there is none).

        Raises:
            peerpool.errors.MeshClosedError: the node is not running.
        """
        await self._call("disconnect", peer_id)

    def peers(self) -> list[PeerInfo]:
        """The peers connected now.

        Raises:
            peerpool.errors.MeshClosedError: the node is not running.
        """
        return [peer_info(t) for t in self._require().peers()]

    def is_connected(self, peer_id: str) -> bool:
        """True while at least one connection to ``peer_id`` is up (False when the node is not running)."""
        return self._handle is not None and self._handle.peer(peer_id) is not None

    async def send(self, peer_id: str, channel: str, payload: bytes) -> None:
        """A direct message on the peer's chat stream. Returns once it is
        queued for writing; waits while the peer's queue is full. Frames the
        stream loses later are reported as MessagesDropped("send_failed")."""
        handle = self._require()
        assert self._slots is not None
        cid = next(self._ids)
        if not handle.send(cid, peer_id, channel, payload):
            await self._until_queued(cid)

    async def send_many(self, peer_id: str, channel: str, payloads: Iterable[bytes]) -> None:
        """Direct messages on one channel, each payload its own frame, in order:
        one call into Rust for the batch (framed there, in chunks of about 64 KiB,
        so the writer puts many frames in one write). Returns once all are
        queued; waits while the peer's queue (4 MiB) is full, which is the
        backpressure a sender in a loop needs. A payload over
        ``max_message_size`` fails the whole batch before any is queued; frames
        the stream loses later are reported as MessagesDropped("send_failed")."""
        handle = self._require()
        cid = next(self._ids)
        if not handle.send_many(cid, peer_id, channel, payloads):
            await self._until_queued(cid)

    async def _until_queued(self, cid: int) -> None:
        """Wait for the command ``cid`` that Rust could not queue at once (the
        peer's queue was full): its completion (or error) comes as a reply."""
        assert self._loop is not None
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._pending[cid] = fut
        try:
            await fut
        finally:
            self._pending.pop(cid, None)

    async def _send_raw(self, peer_id: str, data: bytes) -> None:
        """Test hook: unframed bytes onto the peer's chat stream (a misbehaving peer)."""
        handle = self._require()
        cid = next(self._ids)
        if not handle.send_raw(cid, peer_id, bytes(data)):
            await self._until_queued(cid)

    async def subscribe(self, topic: str) -> None:
        """Join ``topic``: its messages arrive as ``TopicMessage`` events.

        Raises:
            peerpool.errors.MeshError: the node has no pub/sub (``pubsub="none"``).
            peerpool.errors.MeshClosedError: the node is not running.
        """
        await self._call("subscribe", topic, True)

    async def unsubscribe(self, topic: str) -> None:
        """Leave ``topic`` (nothing happens if not subscribed).

        Raises:
            peerpool.errors.MeshError: the node has no pub/sub (``pubsub="none"``).
            peerpool.errors.MeshClosedError: the node is not running.
        """
        await self._call("subscribe", topic, False)

    async def publish(self, topic: str, data: bytes) -> None:
        """Publish ``data`` on ``topic``, signed (gossipsub and floodsub alike:
        go-libp2p's default StrictSign, under which Go nodes drop unsigned
        messages), at most ``max_message_size`` bytes. Publishing where nobody
        listens is not an error (as in go-libp2p); ``stats["publish_no_peers"]``
        counts it."""
        await self._call("publish", topic, data)

    async def reserve(self, relay_addr: str, *, timeout: float = 10.0) -> float:
        """A reservation on a relay v2 server; returns its expiry (time.time()).

        ``relay_addr`` is the relay's full address, or ``/p2p/<relay id>`` alone
        when this node is connected to the relay already. The expiry is now +
        one hour, the relay v2 default of rust-libp2p and go-libp2p servers, not
        the relay's own figure: rust-libp2p 0.57's relay client reads the
        relay's expiry only to time its renewal (at 3/4 of it, which it does by
        itself) and reports no more than that the reservation was accepted.
        :class:`MeshDialError` if the relay refuses or ``timeout`` passes."""
        try:
            return float(await self._call("reserve", relay_addr, timeout, deadline=timeout))
        except asyncio.TimeoutError as exc:
            raise MeshDialError(f"reservation on {relay_addr} timed out") from exc

    # --- request / response --------------------------------------------------------

    async def request(
        self, peer_id: str, protocol: str, payload: bytes, *, timeout: float = 5.0
    ) -> bytes:
        """Send ``payload`` to ``peer_id`` on ``protocol`` (one of the node's
        ``request_protocols``) and return the response. Every failure (not
        connected, refused, the handler's error, ``timeout``) raises
        :class:`MeshRequestError`, so a caller catches one class."""
        try:
            response = await self._call(
                "request", peer_id, protocol, bytes(payload), timeout, deadline=timeout
            )
        except asyncio.TimeoutError as exc:
            raise MeshRequestError(f"{protocol} to {peer_id} timed out") from exc
        return bytes(response)

    def set_request_handler(self, protocol: str, handler: RequestHandler) -> None:
        """Serve requests on ``protocol`` (one of ``request_protocols``).
        An exception in the handler becomes an error response."""
        if protocol not in self._request_protocols:
            raise MeshRequestError(f"{protocol!r} is not among this node's request_protocols")
        self._handlers[protocol] = handler

    def _serve(self, handle: Any, rid: int, peer: str, protocol: str, payload: bytes) -> None:
        handler = self._handlers.get(protocol)
        if handler is None:
            handle.respond(rid, False, f"no handler for {protocol} on this node")
            return
        task = asyncio.ensure_future(self._answer(handle, handler, rid, peer, payload))
        self._handler_tasks.add(task)
        task.add_done_callback(self._handler_tasks.discard)

    async def _answer(
        self, handle: Any, handler: RequestHandler, rid: int, peer: str, payload: bytes
    ) -> None:
        try:
            response = await handler(peer, payload)
            handle.respond(rid, True, bytes(response))
        except asyncio.CancelledError:
            handle.respond(rid, False, "the node stopped")
            raise
        except Exception as exc:  # the handler's failure is the requester's error
            handle.respond(rid, False, f"{type(exc).__name__}: {exc}")

    # --- events ------------------------------------------------------------------

    async def next_events(
        self, max_events: int = 1024, timeout: float | None = None
    ) -> list[MeshEvent]:
        """At least one event, or [] once ``timeout`` passes. MeshClosedError after stop."""
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            handle = self._require()
            assert self._ready is not None
            self._ready.clear()
            batch = handle.drain_events(max_events)
            if batch:
                return [event_from_tuple(t) for t in batch]
            if deadline is None:
                await self._ready.wait()
                continue
            left = deadline - loop.time()
            if left <= 0:
                return []
            try:
                await asyncio.wait_for(self._ready.wait(), left)
            except asyncio.TimeoutError:
                return []

    async def events(self) -> AsyncIterator[MeshEvent]:
        """``async for ev in node.events()``; ends when the node stops."""
        while True:
            try:
                batch = await self.next_events()
            except MeshClosedError:
                return
            for ev in batch:
                yield ev

    @property
    def stats(self) -> dict[str, int]:
        """Counters kept by the swarm (messages in and out, drops by cause,
        ``publish_no_peers``, ...); empty when the node is not running.
        """
        if self._handle is None:
            return {}
        return dict(self._handle.stats())

    def __repr__(self) -> str:
        state = "running" if self._handle is not None else ("stopped" if self._closed else "new")
        return f"MeshNode({self.peer_id}, {state})"
