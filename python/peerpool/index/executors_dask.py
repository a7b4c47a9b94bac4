"""``DaskExecutor``: chunk tasks on a ``dask.distributed`` cluster.

Give it a scheduler address (``tcp://host:8786``) or a ``Client`` of your own.
Dask reschedules the tasks of a worker that dies on the others (a task that
keeps killing workers ends as ``KilledWorker``, which the runner retries like
a lost local worker). Tasks are submitted with ``pure=False``: two chunks
with equal bytes are still two tasks.
"""

from __future__ import annotations

import typing
from concurrent.futures import Future
from typing import Any, Self

from peerpool.errors import SchedulerUnreachableError
from peerpool.index.executors import Task


class DaskExecutor:
    def __init__(self, scheduler: str | Any, connect_timeout: float = 10.0) -> None:
        from distributed import Client  # imported here: Dask is optional for the local pool

        # distributed's Client is untyped: it and what it returns are used as Any
        connect: Any = Client
        self.client: Any
        if isinstance(scheduler, str):
            try:
                self.client = connect(scheduler, timeout=connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise SchedulerUnreachableError(
                    f"no Dask scheduler answered at {scheduler} within {connect_timeout:g} s ({exc})"
                ) from None
            self._own = True
        else:
            self.client = scheduler
            self._own = False

    def submit(self, fn: Task, arg: Any) -> Future[Any]:
        # a distributed Future has result()/done()/exception() like concurrent's
        future: Any = self.client.submit(fn, arg, pure=False)
        return typing.cast("Future[Any]", future)

    def is_worker_loss(self, exc: BaseException) -> bool:
        from distributed.scheduler import KilledWorker

        return isinstance(exc, KilledWorker)

    def recover(self) -> None:
        """Nothing to rebuild: the scheduler replaces lost workers' tasks."""

    def close(self) -> None:
        if self._own:
            self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
