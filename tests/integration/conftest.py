"""Shared real components for the integration tests: a private Tor network and microsocks.

``tor_network`` (session scope) runs ``../shared/tools/private-tor-net.sh up``
once per test session, in its own directory under pytest's tmp dir and on a
block of free ports, and ``down`` at the end. It yields a :class:`TorNetwork`
with the client's SOCKS port (as a ProxyConfig), both control ports with
their cookie files, and an onion service that echoes. Everything listens on
127.0.0.1; the relays may only exit to 127.0.0.0/8.

``microsocks`` (function scope) is a factory that starts Debian's
``microsocks`` SOCKS5 proxy on a free port, with or without a username and
password, and stops it after the test.

Both need Debian packages (`make system-deps` installs them); a missing one
is a test failure that says so, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from peerpool.net import ProxyConfig, parse_address
from tests.net.ports import closed_port, port_range_is_free

PROJECT = Path(__file__).resolve().parents[2]
TOR_NET_SCRIPT = (PROJECT / "../shared/tools/private-tor-net.sh").resolve()
# private-tor-net.sh uses PORT_BASE+0 .. PORT_BASE+70 (ORPorts, DirPorts, control, SOCKS, echo)
TOR_PORT_SPAN = 71
TOR_UP_TIMEOUT = 150  # the network is usually up in ~20 s; a loaded CI machine gets slack


@dataclass(frozen=True)
class TorNetwork:
    """What ``private-tor-net.sh up`` printed, parsed."""

    socks: ProxyConfig  # the client's SocksPort (with ExtendedErrors)
    control_port: int  # the client's ControlPort
    control_cookie: Path
    hs_control_port: int  # the onion service's ControlPort (for ephemeral services)
    hs_control_cookie: Path
    onion: str  # "<56 chars>.onion" of the echo service, port 80
    onion_target: str  # 127.0.0.1:port of the echo server behind it
    net_dir: Path

    @property
    def echo_address(self) -> str:
        return f"{self.onion}:80"

    @contextlib.contextmanager
    def controller(self, which: str = "client") -> Iterator[object]:
        """An authenticated stem Controller for the client's (or ``"hs"``) control port."""
        from stem.control import Controller

        port = self.control_port if which == "client" else self.hs_control_port
        with Controller.from_port(address="127.0.0.1", port=port) as ctl:
            ctl.authenticate()  # cookie auth: stem reads the cookie file Tor names
            yield ctl


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed: run `make system-deps` (Debian package {binary})")
    return path


def _free_port_base() -> int:
    rng = random.Random()
    for _ in range(50):
        base = rng.randrange(20000, 60000 - TOR_PORT_SPAN, 100)
        if port_range_is_free(base, TOR_PORT_SPAN):
            return base
    pytest.fail("no block of free ports found for the private Tor network")


def _parse_env_lines(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture(scope="session")
def tor_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TorNetwork]:
    _require("tor")
    net_dir = tmp_path_factory.mktemp("tor-net")
    env = dict(os.environ, NET_DIR=str(net_dir), PORT_BASE=str(_free_port_base()))
    env["UP_TIMEOUT"] = str(TOR_UP_TIMEOUT)
    command = ["bash", str(TOR_NET_SCRIPT)]
    try:
        up = subprocess.run(
            [*command, "up"], env=env, capture_output=True, text=True, timeout=TOR_UP_TIMEOUT + 30
        )
        if up.returncode != 0:
            pytest.fail(f"private Tor network did not come up:\n{up.stderr[-3000:]}")
        values = _parse_env_lines(up.stdout)
        socks = parse_address(values["TOR_SOCKS"])
        yield TorNetwork(
            socks=ProxyConfig(socks.host, socks.port),
            control_port=parse_address(values["TOR_CONTROL"]).port,
            control_cookie=Path(values["TOR_CONTROL_COOKIE"]),
            hs_control_port=parse_address(values["TOR_HS_CONTROL"]).port,
            hs_control_cookie=Path(values["TOR_HS_CONTROL_COOKIE"]),
            onion=values["ONION"],
            onion_target=values["ONION_TARGET"],
            net_dir=net_dir,
        )
    finally:
        subprocess.run([*command, "down"], env=env, capture_output=True, timeout=60)


@dataclass(frozen=True)
class Microsocks:
    port: int
    username: str | None
    password: str | None

    def proxy(self, **overrides: object) -> ProxyConfig:
        """A ProxyConfig for this proxy; ``overrides`` replace fields (e.g. a wrong password)."""
        fields: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.port,
            "username": self.username,
            "password": self.password,
        }
        fields.update(overrides)
        return ProxyConfig(**fields)  # type: ignore[arg-type]


StartMicrosocks = Callable[..., Microsocks]


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def microsocks() -> Iterator[StartMicrosocks]:
    binary = _require("microsocks")
    procs: list[subprocess.Popen[bytes]] = []

    def start(username: str | None = None, password: str | None = None) -> Microsocks:
        for _ in range(5):  # the free port can be taken between choosing and binding
            port = closed_port()
            args = [binary, "-i", "127.0.0.1", "-p", str(port)]
            if username is not None and password is not None:
                args += ["-u", username, "-P", password]
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(proc)
            if _wait_listening(port, proc):
                return Microsocks(port, username, password)
        pytest.fail("microsocks did not start")

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
