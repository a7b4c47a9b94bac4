"""OrderedRunner on the local process pool: results in order, never more
than K in flight, a worker killed mid-run loses no task, a task that keeps
killing its workers is a WorkerLostError, a task's own error reaches the caller."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from peerpool.errors import InputError, WorkerLostError
from peerpool.index.executors import LocalExecutor, OrderedRunner
from tests.index import tasks


def run_all(
    runner: OrderedRunner, args: list[object], seen: list[int] | None = None
) -> list[object]:
    out: list[object] = []
    for arg in args:
        out += runner.put(arg)
        if seen is not None:
            seen.append(len(runner))
    out += list(runner.drain())
    return out


def test_results_come_in_order_with_at_most_k_in_flight() -> None:
    rng = random.Random(1)
    args = [(n, rng.choice([0.0, 0.01, 0.05])) for n in range(40)]
    with LocalExecutor(2) as pool:
        runner = OrderedRunner(pool, tasks.slow_square, max_in_flight=3)
        in_flight: list[int] = []
        results = run_all(runner, args, in_flight)
    assert [r[0] for r in results] == list(range(40))  # type: ignore[index]
    assert all(r[1] == r[0] ** 2 for r in results)  # type: ignore[index]
    assert max(in_flight) == 3
    assert len({r[2] for r in results}) == 2  # type: ignore[index]  # both workers worked


def test_a_worker_killed_mid_run_loses_no_task() -> None:
    args = [(n, 0.05) for n in range(30)]
    with LocalExecutor(2) as pool:
        runner = OrderedRunner(pool, tasks.slow_square, max_in_flight=4)
        results: list[object] = []
        for i, arg in enumerate(args):
            results += runner.put(arg)
            if i == 10:
                victim = pool.worker_pids()[0]
                os.kill(victim, signal.SIGKILL)
        results += list(runner.drain())
    assert [r[0] for r in results] == list(range(30))  # type: ignore[index]
    assert runner.resubmitted >= 1
    assert victim not in {r[2] for r in results[12:]}  # type: ignore[index]


def test_a_pool_that_broke_between_results_takes_the_next_put() -> None:
    # Under load the kill above can land so that the pool is already broken
    # when the next put submits: submit itself raises BrokenProcessPool then.
    with LocalExecutor(2) as pool:
        runner = OrderedRunner(pool, tasks.slow_square, max_in_flight=4)
        assert [r[:2] for r in run_all(runner, [(0, 0.0)])] == [(0, 0)]  # type: ignore[index]
        os.kill(pool.worker_pids()[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not pool._pool._broken and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)
        assert pool._pool._broken  # type: ignore[attr-defined]
        results = run_all(runner, [(n, 0.0) for n in range(1, 6)])
    assert [r[0] for r in results] == [1, 2, 3, 4, 5]  # type: ignore[index]


def test_a_task_that_kills_every_worker_fails_after_its_attempts() -> None:
    with LocalExecutor(1) as pool:
        runner = OrderedRunner(pool, tasks.kill_own_worker, max_in_flight=2, max_attempts=3)
        runner.put(1)
        with pytest.raises(WorkerLostError):
            list(runner.drain())


def test_a_tasks_own_error_reaches_the_caller() -> None:
    with LocalExecutor(1) as pool:
        runner = OrderedRunner(pool, tasks.fail, max_in_flight=2)
        runner.put(7)
        with pytest.raises(ValueError, match="task 7 fails"):
            list(runner.drain())


def test_bad_arguments() -> None:
    with pytest.raises(InputError):
        LocalExecutor(0)
    with LocalExecutor(1) as pool, pytest.raises(InputError):
        OrderedRunner(pool, tasks.fail, max_in_flight=0)
