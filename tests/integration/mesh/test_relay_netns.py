"""Relay v2 in three network namespaces, and the namespace harness under it.

The harness tests (plain sockets) show what the relay test relies on: each veth link
carries TCP, the dialer has no path to the private node but through the relay, and
nothing is left behind.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from tests.integration.mesh.jsonl_proc import HERE, JsonLineProcess, PeerProcessError, b64, unb64
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


# --- relay v2 through the namespaces: our three nodes, one per namespace ------------------

RELAY_PORT = 4001


async def _ours_in(topo: Topology, ns: str, *args: str) -> JsonLineProcess:
    return await JsonLineProcess.start(
        [sys.executable, str(HERE / "mesh_peer.py"), *args], prefix=topo.prefix(ns)
    )


async def test_relay_v2_private_node_reachable_only_through_the_relay(
    netns_topology: Topology,
) -> None:
    t = netns_topology
    relay, private, dialer = await asyncio.gather(
        _ours_in(t, t.relay, "--relay-server", "--listen", f"/ip4/0.0.0.0/tcp/{RELAY_PORT}"),
        _ours_in(t, t.private, "--listen", f"/ip4/{t.private_addr}/tcp/{RELAY_PORT}"),
        _ours_in(t, t.dialer, "--listen", f"/ip4/{t.dialer_addr}/tcp/{RELAY_PORT}"),
    )
    try:
        r_id, p_id, d_id = relay.peer_id, private.peer_id, dialer.peer_id
        relay_for_private = f"/ip4/{t.relay_private_side}/tcp/{RELAY_PORT}/p2p/{r_id}"
        relay_for_dialer = f"/ip4/{t.relay_dialer_side}/tcp/{RELAY_PORT}/p2p/{r_id}"
        # the control: no direct path from the dialer to the private node
        with pytest.raises(PeerProcessError, match="MeshDialError"):
            await dialer.call(
                "dial", addr=f"/ip4/{t.private_addr}/tcp/{RELAY_PORT}/p2p/{p_id}", within=5
            )
        # a circuit through a relay we know no address of: a typed error, not a hang
        with pytest.raises(PeerProcessError, match="no known address of relay"):
            await dialer.call("dial", addr=f"/p2p/{r_id}/p2p-circuit/p2p/{p_id}", within=5)
        await private.call("dial", addr=relay_for_private)
        # the relay by id alone: its address is the one of our connection to it
        expiry = (await private.call("reserve", relay_addr=f"/p2p/{r_id}"))["expiry"]
        # rust-libp2p's relay client does not report the relay's expiry (see reserve())
        assert expiry > time.time() + 60, "a reservation lasts (relay v2 default: 1 h)"
        # the dialer knows the relay (a direct connection), then dials the short circuit
        # address: the relay's transport address comes from that connection
        await dialer.call("dial", addr=relay_for_dialer)
        reply = await dialer.call("dial", addr=f"/p2p/{r_id}/p2p-circuit/p2p/{p_id}", within=20)
        assert reply["peer_id"] == p_id and reply["info"]["relayed"] is True
        await dialer.call(
            "send", peer_id=p_id, channel=f"{d_id}::dm:{p_id}-misc", payload=b64(b"through")
        )
        got = await private.next_event("dm", peer_id=d_id)
        assert unb64(got["payload"]) == b"through"
        await private.call("send", peer_id=d_id, channel="back", payload=b64(b"and back"))
        got = await dialer.next_event("dm", peer_id=p_id)
        assert unb64(got["payload"]) == b"and back"
        d_peers = {p["peer_id"]: p for p in (await dialer.call("peers"))["infos"]}
        p_peers = {p["peer_id"]: p for p in (await private.call("peers"))["infos"]}
        assert d_peers[p_id]["relayed"] is True and d_peers[r_id]["relayed"] is False
        assert p_peers[d_id]["relayed"] is True and p_peers[d_id]["direction"] == "inbound", p_peers
        assert any("/p2p-circuit" in a for a in d_peers[p_id]["addrs"]), d_peers[p_id]
    finally:
        await asyncio.gather(relay.close(), private.close(), dialer.close())
