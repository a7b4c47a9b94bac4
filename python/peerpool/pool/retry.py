"""The pool's two retry loops: bounded connect-with-retry and the background reconnector.

Both use :class:`~peerpool.net.Backoff`, and both dial concurrently. The
bounded loop runs one worker per missing server, each with its own backoff
run, and returns on the first of: target reached, every worker given up,
deadline. Waiting on a single event (set on every connect and worker exit)
rather than on passes is what lets it return the moment the last live server
connects, and stop at the deadline in the middle of a pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from peerpool.errors import DialTimeoutError, PeerpoolError
from peerpool.net.backoff import Backoff
from peerpool.pool.contract import ConnectOutcome

if TYPE_CHECKING:
    from peerpool.pool.client_pool import ClientPool

log = logging.getLogger(__name__)


async def connect_with_retry(
    pool: ClientPool[Any], timeout: float, backoff: Backoff, min_connected: int | None
) -> ConnectOutcome:
    loop = asyncio.get_running_loop()
    deadline_at = loop.time() + max(timeout, 0.0)
    total = len(pool.addresses)
    target = total if min_connected is None else max(0, min(min_connected, total))
    outcome = ConnectOutcome()
    progress = asyncio.Event()
    started: list[asyncio.Task[Any]] = []  # attempts this call began (abandoned at return)

    async def keep_dialing(node: str) -> None:
        run = backoff.start(rng=pool.rng, clock=loop.time, deadline=deadline_at - loop.time())
        try:
            while node not in pool.clients:
                remaining = deadline_at - loop.time()
                if remaining <= 0:
                    return
                task, new = pool._start_dial(node, remaining)
                if new:
                    started.append(task)
                try:
                    await pool._await_dial(node, task)
                except PeerpoolError as exc:
                    outcome.errors[node] = exc
                    delay = run.next_delay()
                    if delay is None:
                        return
                    await asyncio.sleep(delay)
                    continue
                outcome.new.append(node)
                outcome.errors.pop(node, None)
                return
        finally:
            progress.set()

    missing = pool.list_disconnected()
    workers = [asyncio.create_task(keep_dialing(n)) for n in missing]
    try:
        while True:
            progress.clear()  # cleared before the checks: no await between them
            if len(pool.clients) >= target or all(w.done() for w in workers):
                break
            remaining = deadline_at - loop.time()
            if remaining <= 0:
                outcome.deadline_hit = True
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(progress.wait(), remaining)
    finally:
        for task in (*workers, *started):
            task.cancel()
        pending = [t for t in (*workers, *started) if not t.done()]
        if pending:
            await asyncio.wait(pending)
    for node in pool.clients:
        outcome.errors.pop(node, None)
    for node in missing:
        if node not in pool.clients and node not in outcome.errors:
            # its attempt was still running when the call ended
            outcome.errors[node] = DialTimeoutError(f"{node}: not connected within {timeout:g} s")
    outcome.connected = list(pool.clients)
    if outcome.deadline_hit:
        log.warning(
            "connect_all_with_retry: %d/%d connected at the %g s deadline",
            len(pool.clients),
            total,
            timeout,
        )
    return outcome


async def reconnect_forever(pool: ClientPool[Any], backoff: Backoff) -> None:
    """Reconnect dropped servers until the pool closes (or the policy's limits end it)."""
    run = backoff.start(rng=pool.rng)
    while not pool.closed:
        if not pool.list_disconnected():
            run.reset()
            pool._changed.clear()
            await pool._changed.wait()
            # a server that just dropped us is rarely back at once: give it a moment
            await asyncio.sleep(backoff.initial)
            continue
        try:
            outcome = await pool.reconnect_disconnected()
        except PeerpoolError as exc:  # e.g. the pool closed under us
            log.info("reconnect task: pass failed: %s", exc)
            continue
        if outcome.new:
            run.reset()
        if not pool.list_disconnected():
            continue
        delay = run.next_delay()
        if delay is None:
            log.warning("reconnect task: giving up, the backoff policy's limits are reached")
            return
        await asyncio.sleep(delay)
