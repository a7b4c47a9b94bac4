"""The DHT end to end: three storing nodes in separate processes on 127.0.0.1,
and a client node in the benchmark's process that stores nothing, so every get
crosses a process boundary. Ours (peerpool.chord on the mesh node) beside
py2p 0.7.878 and kademlia 2.2.3, each doing the same in the same run:

- remote get of an existing key: median per get, p99 in the figure column;
- get of a missing key (py2p waits for its whole timeout, 10 s by default);
- set throughput: a burst of concurrent sets (py2p's set sends and returns).

Groups are ``chord.dht.<what>:<baseline>``: ours is measured once per
baseline so that each row's ratio comes from the same run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: p99 of each remote-get run and the machine's load average, for
#: scripts/update_readme_bench.py (pytest-benchmark keeps medians only).
EXTRA_FILE = ROOT / ".benchmarks" / "chord_dht_extra.json"
P99: dict[str, float] = {}
KEYS = [f"bench-key-{i}" for i in range(100)]
#: py2p's set-up (ring, stored keys) gets this long before it counts as failed.
PY2P_SETUP_S = 150
BURST = 500


def _spawn(system: str, bootstrap: str | None) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "benches.chord_peer", system]
    if bootstrap:
        cmd += ["--bootstrap", bootstrap]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # py2p prints its own notices to stdout too
        if line.startswith("{"):
            return proc, json.loads(line)["addr"]
    proc.kill()
    raise RuntimeError(f"{system} peer exited before listening")


@pytest.fixture(scope="module")
def peers() -> Iterator[Callable[[str], list[str]]]:
    started: dict[str, list[str]] = {}
    procs: list[subprocess.Popen[str]] = []

    def three(system: str, bootstrap: str | None = None, fresh: bool = False) -> list[str]:
        if fresh or system not in started:
            addrs: list[str] = []
            for _ in range(3):
                proc, addr = _spawn(system, bootstrap or (addrs[0] if addrs else None))
                procs.append(proc)
                addrs.append(addr)
            started[system] = addrs
        return started[system]

    yield three
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
    for proc in procs:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module", autouse=True)
def _write_extra(request: pytest.FixtureRequest) -> Iterator[None]:
    load_before = os.getloadavg()[0]
    yield
    if request.config.getoption("benchmark_disable", False):
        return  # a smoke run (make test) measures nothing worth keeping
    EXTRA_FILE.parent.mkdir(exist_ok=True)
    # a partial run (-k) keeps the p99s of the groups it did not measure
    extra = json.loads(EXTRA_FILE.read_text()) if EXTRA_FILE.exists() else {}
    extra["p99"] = {**extra.get("p99", {}), **P99}
    extra["loadavg"] = [load_before, os.getloadavg()[0]]
    extra["burst"] = BURST
    extra["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    EXTRA_FILE.write_text(json.dumps(extra, indent=1))


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


# --- the three clients --------------------------------------------------------------


class Ours:
    def __init__(self, loop: asyncio.AbstractEventLoop, addrs: list[str]) -> None:
        from peerpool.chord import PROTOCOL, ChordNode
        from peerpool.mesh import MeshNode

        self.loop = loop
        self.mesh = MeshNode(pubsub="none", request_protocols=(PROTOCOL,))
        self.node = ChordNode(self.mesh)

        async def start() -> None:
            await self.mesh.start()
            await self.node.start()
            await self.node.join(addrs[0])
            await self.node.unjoin()  # a client: routes and asks, stores nothing
            await asyncio.sleep(1.5)  # a stabilisation round or so on the peers

        loop.run_until_complete(start())

    def set_many(self, items: dict[str, str]) -> None:
        async def go() -> None:
            await asyncio.gather(*(self.node.set(k, v) for k, v in items.items()))

        self.loop.run_until_complete(go())

    def get(self, key: str) -> Any:
        return self.loop.run_until_complete(self.node.get(key))

    def close(self) -> None:
        async def stop() -> None:
            await self.node.stop()
            await self.mesh.stop()

        self.loop.run_until_complete(stop())


class Kademlia:
    def __init__(self, loop: asyncio.AbstractEventLoop, addrs: list[str]) -> None:
        from kademlia.network import Server
        from kademlia.storage import ForgetfulStorage

        class KeepsNothing(ForgetfulStorage):  # a client: every get goes to the network
            def __setitem__(self, key: Any, value: Any) -> None:
                pass

        self.loop = loop
        self.server = Server(storage=KeepsNothing())
        host, port = addrs[0].rsplit(":", 1)

        async def start() -> None:
            await self.server.listen(0, interface="127.0.0.1")
            await self.server.bootstrap([(host, int(port))])

        loop.run_until_complete(start())

    def set_many(self, items: dict[str, str]) -> None:
        # Ten in flight: with many more, kademlia's crawls come back empty
        # (UDP answers lost) and set() raises on max() of no nodes.
        limit = asyncio.Semaphore(10)

        async def one(k: str, v: str) -> None:
            async with limit:
                assert await self.server.set(k, v)

        async def go() -> None:
            await asyncio.gather(*(one(k, v) for k, v in items.items()))

        self.loop.run_until_complete(go())

    def get(self, key: str) -> Any:
        return self.loop.run_until_complete(self.server.get(key))

    def close(self) -> None:
        self.server.stop()


class Py2p:
    """py2p's peers learn that a node stores only from the handshake it sends
    after connecting, so here the client listens first and the three storing
    peers connect to it (and find each other through its peer list)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, peers: Callable[..., list[str]], fresh: bool = False
    ) -> None:
        import socket

        from py2p import chord

        #: whether the stored keys read back (see ``landed``); a ring that
        #: formed can still lose them, and each lost get costs py2p's 10 s
        self.reads_back = True
        # py2p's joins fail now and then (issue 12: 4 of 20 three-node joins),
        # so a ring that does not form is tried again with three fresh peers
        for attempt in range(3):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            self.sock = chord.ChordSocket("127.0.0.1", port)  # not joined: it stores nothing
            addrs = peers("py2p", f"127.0.0.1:{port}", fresh=fresh or attempt > 0)
            deadline = time.monotonic() + 20
            while len(list(self.sock.data_storing)) < len(addrs):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            else:
                return
        raise RuntimeError("py2p's peers never announced themselves as storing (3 tries)")

    def set_many(self, items: dict[str, str]) -> None:
        for k, v in items.items():
            self.sock.set(k, v)

    def landed(self, keys: list[str], within: float = 30.0) -> bool:
        """py2p's sets are sends without an answer: wait until the first and the
        last key read back (on a loaded machine half a second was not always enough)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if all(self.sock.getSync(k, timeout=2) == f"value-of-{k}" for k in (keys[0], keys[-1])):
                return True
            time.sleep(0.5)
        return False

    def get(self, key: str) -> Any:
        return self.sock.getSync(key)  # default timeout, 10 s

    def close(self) -> None:
        pass


CLIENTS = {"peerpool": Ours, "py2p": Py2p, "kademlia": Kademlia}


@pytest.fixture(scope="module")
def clients(
    peers: Callable[[str], list[str]],
    loop: asyncio.AbstractEventLoop,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[[str], Any]]:
    made: dict[str, Any] = {}
    smoke = bool(request.config.getoption("benchmark_disable", False))

    def make(system: str) -> Any:
        if system != "py2p":
            c = CLIENTS[system](loop, peers(system))
            c.set_many({k: f"value-of-{k}" for k in KEYS})
            return c
        # A py2p ring whose keys do not read back is built again from fresh
        # peers (twice at most, in a measured run; a smoke run under make test
        # takes the first); one that still loses them is measured as it is,
        # over fewer rounds (see _remote_get).
        for attempt in range(1 if smoke else 3):
            c = Py2p(loop, peers, fresh=attempt > 0)
            c.set_many({k: f"value-of-{k}" for k in KEYS})
            if c.landed(KEYS, within=10 if smoke else 30):
                return c
        c.reads_back = False
        return c

    def client(system: str) -> Any:
        if system not in made:
            if system != "py2p":
                made[system] = make(system)
                return made[system]
            # py2p has hung here now and then (its ring never settling): bounded,
            # so that its failure is reported as such instead of a stuck run.
            # A daemon thread: a hung set-up must not hold the process at exit.
            box: list[Any] = []
            worker = threading.Thread(target=lambda: box.append(make(system)), daemon=True)
            worker.start()
            worker.join(PY2P_SETUP_S)
            made[system] = box[0] if box else None
        if made[system] is None:
            message = f"py2p's ring did not form within {PY2P_SETUP_S} s (its own flakiness)"
            if smoke:
                pytest.skip(message)  # the smoke run checks our bench code, not py2p
            raise RuntimeError(message)
        return made[system]

    yield client
    for c in made.values():
        if c is not None:  # None: a py2p set-up that never completed
            c.close()


# --- the measurements -----------------------------------------------------------------


def _remote_get(benchmark: Any, client: Any) -> None:
    times: list[float] = []
    keys = iter(KEYS * 1000)

    wrong: list[str] = []

    def one() -> None:
        key = next(keys)
        start = time.perf_counter()
        value = client.get(key)
        times.append(time.perf_counter() - start)
        if value != f"value-of-{key}":
            # py2p now and then reads a stored key as None (issue 12 saw its joins
            # fail too): that is its behaviour, counted in its figure; ours must not
            assert isinstance(client, Py2p), f"{key!r} read as {value!r}"
            wrong.append(key)

    # py2p: each lost key costs its whole 10 s timeout, so a ring that lost
    # its keys gets a handful of rounds (the figure then says so)
    rounds = (100 if client.reads_back else 5) if isinstance(client, Py2p) else 300
    benchmark.pedantic(one, rounds=rounds, iterations=1, warmup_rounds=3)
    times.sort()
    p99 = times[int(0.99 * (len(times) - 1))]
    benchmark.extra_info["figure"] = f"p99 {p99 * 1e3:.2f} ms" + (
        f", {len(wrong)} of {len(times)} gets read a stored key wrong" if wrong else ""
    )
    P99[f"{benchmark.group}/{'theirs' if isinstance(client, (Py2p, Kademlia)) else 'ours'}"] = p99


def _missing_get(benchmark: Any, client: Any) -> None:
    counter = iter(range(10**9))

    def one() -> None:
        assert client.get(f"never-set-{next(counter)}") is None

    rounds = 1 if isinstance(client, Py2p) else 50
    benchmark.pedantic(one, rounds=rounds, iterations=1)


def _set_burst(benchmark: Any, client: Any) -> None:
    counter = iter(range(10**9))

    def burst() -> None:
        n = next(counter)
        client.set_many({f"burst-{n}-{i}": "x" * 32 for i in range(BURST)})

    benchmark.extra_info["items"] = BURST
    benchmark.pedantic(burst, rounds=5 if isinstance(client, Ours) else 2, iterations=1)


for _what, _fn in (("remote_get", _remote_get), ("missing_get", _missing_get), ("set", _set_burst)):
    for _baseline in ("py2p", "kademlia"):

        def _ours(benchmark: Any, clients: Any, fn: Any = _fn) -> None:
            fn(benchmark, clients("peerpool"))

        def _theirs(benchmark: Any, clients: Any, fn: Any = _fn, system: str = _baseline) -> None:
            fn(benchmark, clients(system))

        group = pytest.mark.benchmark(group=f"chord.dht.{_what}:{_baseline}")
        globals()[f"test_{_what}_vs_{_baseline}"] = group(_ours)
        globals()[f"test_{_what}_{_baseline}_baseline"] = group(_theirs)
