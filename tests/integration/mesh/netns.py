"""Three network namespaces for the relay v2 tests: a private node, a relay, a dialer.

    private (10.77.1.2) ==veth== (10.77.1.1) relay (10.77.2.1) ==veth== (10.77.2.2) dialer

A relay v2 reservation needs a non-loopback address, and "reachable only through the
relay" needs a dialer with no route to the private node: 127.0.0.1 gives neither, so
the tests build this themselves (as root, with iproute2's ``ip``). The addresses exist
only inside the namespaces; none has a default route, the relay does not forward IP
(a new namespace starts with ip_forward = 0), and nothing is linked to the host's own
network, so no packet can leave them. Each namespace also gets its loopback up.

Names are unique per run (``ppm<pid>x<random>-<role>``), so parallel runs do not
collide; a run that was killed before its teardown leaves names whose pid is dead,
and the next run removes them.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

PREFIX = "ppm"
NAME_RE = re.compile(rf"^{PREFIX}(\d+)x[0-9a-f]+-\w+$")
# 10.77.0.0/16: private, and picked to be unlikely to overlap a lab network, though
# overlap would not matter: these addresses are never configured outside the namespaces
PRIVATE_ADDR, RELAY_PRIVATE_SIDE = "10.77.1.2", "10.77.1.1"
RELAY_DIALER_SIDE, DIALER_ADDR = "10.77.2.1", "10.77.2.2"


class NetnsError(RuntimeError):
    """An ``ip`` command failed (not root, no iproute2, ...)."""


def ip(*args: str) -> str:
    exe = shutil.which("ip")
    if exe is None:
        raise NetnsError("iproute2's `ip` is missing: run `make system-deps`")
    res = subprocess.run([exe, *args], capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {res.stderr.strip()}")
    return res.stdout


@dataclass(frozen=True)
class Topology:
    private: str  # namespace names
    relay: str
    dialer: str
    private_addr: str = PRIVATE_ADDR
    relay_private_side: str = RELAY_PRIVATE_SIDE
    relay_dialer_side: str = RELAY_DIALER_SIDE
    dialer_addr: str = DIALER_ADDR

    @property
    def names(self) -> tuple[str, str, str]:
        return (self.private, self.relay, self.dialer)

    @staticmethod
    def prefix(ns: str) -> list[str]:
        """The argv prefix that runs a command inside namespace ``ns``."""
        return [shutil.which("ip") or "ip", "netns", "exec", ns]

    def run(self, ns: str, argv: Sequence[str], **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.prefix(ns), *argv], text=True, **kw)  # type: ignore[call-overload, no-any-return]

    def popen(self, ns: str, argv: Sequence[str], **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen([*self.prefix(ns), *argv], text=True, **kw)  # type: ignore[call-overload, no-any-return]


def list_namespaces() -> list[str]:
    # `ip netns list` prints "name (id: N)" for namespaces that have an id
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def remove_stale() -> None:
    """Remove our namespaces whose creating process is gone (a killed earlier run)."""
    for name in list_namespaces():
        m = NAME_RE.match(name)
        if m and not _alive(int(m.group(1))):
            with contextlib.suppress(NetnsError):
                ip("netns", "del", name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def three_namespaces() -> Iterator[Topology]:
    remove_stale()
    tag = f"{PREFIX}{os.getpid()}x{secrets.token_hex(3)}"
    topo = Topology(private=f"{tag}-priv", relay=f"{tag}-relay", dialer=f"{tag}-dial")
    created: list[str] = []
    try:
        for ns in topo.names:
            ip("netns", "add", ns)
            created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        # each veth pair is created with its ends already inside the two namespaces, so
        # no interface (and no address) ever exists in the host's own namespace
        _link(topo.private, "to-relay", PRIVATE_ADDR, topo.relay, "to-priv", RELAY_PRIVATE_SIDE)
        _link(topo.dialer, "to-relay", DIALER_ADDR, topo.relay, "to-dial", RELAY_DIALER_SIDE)
        yield topo
    finally:
        errors = []
        for ns in reversed(created):
            try:
                ip("netns", "del", ns)  # deleting a namespace destroys its veth ends
            except NetnsError as exc:
                errors.append(str(exc))
        if errors:
            raise NetnsError("; ".join(errors))


def _link(ns_a: str, if_a: str, addr_a: str, ns_b: str, if_b: str, addr_b: str) -> None:
    ip("link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
    for ns, ifname, addr in ((ns_a, if_a, addr_a), (ns_b, if_b, addr_b)):
        ip("-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
        ip("-n", ns, "link", "set", ifname, "up")
