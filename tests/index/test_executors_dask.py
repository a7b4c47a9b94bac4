"""DaskExecutor on a LocalCluster of two worker processes on 127.0.0.1:
results in order, a worker killed mid-run loses no task (Dask reschedules
its tasks on the other), and a scheduler address with nothing behind it is
a SchedulerUnreachableError."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator

import distributed  # in the test extra: a missing one is a failure, never a skip
import pytest

from peerpool.errors import SchedulerUnreachableError
from peerpool.index.executors import OrderedRunner
from peerpool.index.executors_dask import DaskExecutor
from tests.index import tasks


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_results_in_order_on_two_workers(client: object) -> None:
    executor = DaskExecutor(client)
    runner = OrderedRunner(executor, tasks.slow_square, max_in_flight=3)
    out: list[object] = []
    for n in range(20):
        out += runner.put((n, 0.01))
    out += list(runner.drain())
    assert [r[0] for r in out] == list(range(20))  # type: ignore[index]
    assert len({r[2] for r in out}) == 2  # type: ignore[index]


def test_a_worker_killed_mid_run_loses_no_task(client: object) -> None:
    executor = DaskExecutor(client)
    pids = list(client.run(os.getpid).values())  # type: ignore[attr-defined]
    runner = OrderedRunner(executor, tasks.slow_square, max_in_flight=4)
    out: list[object] = []
    for n in range(24):
        out += runner.put((n, 0.1))
        if n == 6:
            os.kill(pids[0], signal.SIGKILL)
    out += list(runner.drain())
    assert [r[0] for r in out] == list(range(24))  # type: ignore[index]
    assert pids[0] not in {r[2] for r in out[12:]}  # type: ignore[index]
    client.wait_for_workers(2, timeout=60)  # type: ignore[attr-defined]  # the nanny restarts it


def test_a_scheduler_with_nothing_behind_it() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(SchedulerUnreachableError, match=f"127.0.0.1:{port}"):
        DaskExecutor(f"tcp://127.0.0.1:{port}", connect_timeout=2)
    assert time.monotonic() - started < 30
