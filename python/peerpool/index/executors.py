"""Running a function per chunk in workers, at most K at a time, results in order.

An executor runs one task: ``submit(fn, arg)`` returns a
:class:`concurrent.futures.Future`. :class:`LocalExecutor` (the default) is a
process pool on this machine; :class:`~peerpool.index.executors_dask.DaskExecutor`
spreads tasks over a ``dask.distributed`` cluster.

:class:`OrderedRunner` is what a producer (a download handler, or the reader
of stored blocks) talks to: ``put(arg)`` blocks while K tasks are in flight,
which is the backpressure that keeps memory at K chunks whatever the
producer's speed, and hands back the results that are ready, in the order the
arguments were put. When a worker process dies, the pool breaks and every
task it had not finished is submitted again to a fresh pool: no chunk is lost
(a task that keeps killing its workers fails after ``max_attempts``).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

from peerpool.errors import InputError, WorkerLostError

Task = Callable[[Any], Any]


class Executor(Protocol):
    def submit(self, fn: Task, arg: Any) -> Future[Any]: ...

    def is_worker_loss(self, exc: BaseException) -> bool:
        """Whether a task's error means its worker died (run it again)."""
        ...

    def recover(self) -> None:
        """Make the executor usable again after a worker loss."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """A process pool of ``workers`` processes (the CPU count by default),
    started with forkserver so that a parent with threads (asyncio, LMDB)
    forks nothing but a clean server."""

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise InputError(f"workers must be >= 1, not {workers}")
        self.workers = workers or os.cpu_count() or 1
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["peerpool.index.work"])
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=self._context)

    def submit(self, fn: Task, arg: Any) -> Future[Any]:
        return self._pool.submit(fn, arg)

    def is_worker_loss(self, exc: BaseException) -> bool:
        return isinstance(exc, BrokenProcessPool)

    def recover(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def worker_pids(self) -> list[int]:
        """The pool's worker processes (for tests that kill one)."""
        return [p.pid for p in getattr(self._pool, "_processes", {}).values() if p.pid]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Slot:
    arg: Any
    future: Future[Any]
    attempts: int = 1
    done: bool = field(default=False)


class OrderedRunner:
    """``fn`` over a stream of arguments on ``executor``, at most
    ``max_in_flight`` at a time, results in order."""

    def __init__(
        self, executor: Executor, fn: Task, max_in_flight: int, max_attempts: int = 3
    ) -> None:
        if max_in_flight < 1:
            raise InputError(f"max_in_flight must be >= 1, not {max_in_flight}")
        self.executor = executor
        self.fn = fn
        self.max_in_flight = max_in_flight
        self.max_attempts = max_attempts
        self._slots: deque[_Slot] = deque()
        self.resubmitted = 0  # tasks run again after a worker loss

    def __len__(self) -> int:
        return len(self._slots)

    def put(self, arg: Any) -> list[Any]:
        """Submit ``arg``; first wait until fewer than K are in flight. Returns
        the results completed in order so far (possibly none)."""
        ready = self._ready()
        while len(self._slots) >= self.max_in_flight:
            ready.append(self._wait_oldest())
        self._slots.append(_Slot(arg, self._submit(arg)))
        return ready

    def _submit(self, arg: Any) -> Future[Any]:
        try:
            return self.executor.submit(self.fn, arg)
        except BaseException as exc:
            # A pool that broke since the last result refuses new work at
            # once (ProcessPoolExecutor raises BrokenProcessPool from submit):
            # the same loss as a failed task, recovered the same way.
            if not self.executor.is_worker_loss(exc):
                raise
            self._rerun_lost(exc)
            return self.executor.submit(self.fn, arg)

    def drain(self) -> Iterator[Any]:
        """Every remaining result, in order."""
        while self._slots:
            yield self._wait_oldest()

    def _ready(self) -> list[Any]:
        out = []
        while self._slots and self._slots[0].future.done():
            out.append(self._wait_oldest())
        return out

    def _wait_oldest(self) -> Any:
        slot = self._slots[0]
        while True:
            try:
                result = slot.future.result()
            except BaseException as exc:
                if not self.executor.is_worker_loss(exc):
                    raise
                self._rerun_lost(exc)
                continue
            self._slots.popleft()
            return result

    def _rerun_lost(self, exc: BaseException) -> None:
        """A worker died: give every unfinished task to a recovered executor."""
        self.executor.recover()
        for slot in self._slots:
            fut = slot.future
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                continue  # finished before the loss: keep its result
            if slot.attempts >= self.max_attempts:
                raise WorkerLostError(
                    f"a task failed on {slot.attempts} workers that died under it"
                ) from exc
            slot.attempts += 1
            slot.future = self.executor.submit(self.fn, slot.arg)
            self.resubmitted += 1
