"""Relay v2 in three network namespaces, and the namespace harness under it.

The harness tests (plain sockets) show what the relay test relies on: each veth link
carries TCP, the dialer has no path to the private node but through the relay, and
nothing is left behind.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.mesh.netns import (
    NetnsError,
    Topology,
    ip,
    list_namespaces,
    three_namespaces,
)

# a one-connection TCP echo server: prints "listening" once bound, echoes one message
ECHO_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print("listening", flush=True)
s.settimeout(30)
c, _ = s.accept(); c.sendall(c.recv(1024)); c.close()
"""
# connects, sends, prints what came back, or the errno name of a failed connect
ECHO_CLIENT = """
import errno, socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
except OSError as e:
    print("error", errno.errorcode.get(e.errno, e.errno) if e.errno else type(e).__name__)
    sys.exit(0)
c.sendall(b"ping across the veth"); print("got", c.recv(1024).decode())
"""


def _echo(topo: Topology, server_ns: str, client_ns: str, addr: str, port: int = 4001) -> str:
    server = topo.popen(
        server_ns, [sys.executable, "-c", ECHO_SERVER, addr, str(port)], stdout=subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "listening"
        res = topo.run(
            client_ns,
            [sys.executable, "-c", ECHO_CLIENT, addr, str(port)],
            capture_output=True,
            timeout=30,
            check=True,
        )
        return str(res.stdout).strip()
    finally:
        server.kill()
        server.wait()


def test_tcp_echo_across_each_veth(netns_topology: Topology) -> None:
    t = netns_topology
    assert _echo(t, t.relay, t.dialer, t.relay_dialer_side) == "got ping across the veth"
    assert _echo(t, t.relay, t.private, t.relay_private_side) == "got ping across the veth"
    # and the other way: the relay reaches both ends
    assert _echo(t, t.private, t.relay, t.private_addr) == "got ping across the veth"
    assert _echo(t, t.dialer, t.relay, t.dialer_addr) == "got ping across the veth"


def test_dialer_has_no_route_to_the_private_node(netns_topology: Topology) -> None:
    t = netns_topology
    # the private node listens on its only non-loopback address, yet the dialer cannot
    # reach it: it has no route there, and the relay does not forward IP packets
    assert _echo_refused(t, t.dialer, t.private_addr) == "error ENETUNREACH"
    assert _echo_refused(t, t.private, t.dialer_addr) == "error ENETUNREACH"
    routes = t.run(t.dialer, ["ip", "route", "show"], capture_output=True, check=True).stdout
    assert "default" not in routes and "10.77.1." not in routes
    fwd = t.run(
        t.relay, ["sysctl", "-n", "net.ipv4.ip_forward"], capture_output=True, check=True
    ).stdout
    assert fwd.strip() == "0"


def _echo_refused(t: Topology, client_ns: str, addr: str) -> str:
    res = t.run(
        client_ns,
        [sys.executable, "-c", ECHO_CLIENT, addr, "4001"],
        capture_output=True,
        timeout=30,
        check=True,
    )
    return str(res.stdout).strip()


def test_addresses_exist_only_inside_the_namespaces(netns_topology: Topology) -> None:
    host_addrs = ip("-o", "addr", "show")
    assert "10.77." not in host_addrs
    inside = ip("-n", netns_topology.relay, "-o", "addr", "show")
    assert "10.77.1.1/24" in inside and "10.77.2.1/24" in inside


def test_teardown_removes_everything_even_on_failure() -> None:
    with pytest.raises(RuntimeError, match="boom"), three_namespaces() as topo:
        names = topo.names
        assert set(names) <= set(list_namespaces())
        raise RuntimeError("boom")
    assert not set(names) & set(list_namespaces())
    # and a second run gets different names
    with three_namespaces() as again:
        assert not set(again.names) & set(names)


def test_ip_failure_is_a_typed_error() -> None:
    with pytest.raises(NetnsError, match="no-such-namespace"):
        ip("-n", "no-such-namespace", "link")
