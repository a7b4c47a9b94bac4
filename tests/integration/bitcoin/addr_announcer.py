"""A scripted peer, run as its own process, that announces addresses.

``python -m tests.integration.bitcoin.addr_announcer [--addrv2] HOST:PORT ...``
listens on 127.0.0.1 (a port the OS picks, printed as ``127.0.0.1:<port>``
on the first line of stdout), does the version handshake with whoever
connects, waits for its ``getaddr`` and answers with the given addresses in
one ``addr`` (or BIP155 ``addrv2``) message, then stays connected and silent.
The regtest node relays only routable addresses, so a test that needs a
127.0.0.1 peer announced uses this instead.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
import time

from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.messages.addr import ip_to_bytes
from peerpool.net import parse_address
from tests.integration.bitcoin.fake_peer import FakeSide, fake_peer


def addr_message(peers: list[str], v2: bool) -> msgs.Message:
    now = int(time.time())
    addresses = [parse_address(p) for p in peers]
    if not v2:
        return msgs.Addr(
            tuple(
                msgs.TimedAddress(now, msgs.NODE_NETWORK, ip_to_bytes(a.host), a.port)
                for a in addresses
            )
        )
    entries = []
    for a in addresses:
        ip = ipaddress.ip_address(a.host)
        entries.append(
            msgs.AddrV2Entry(now, msgs.NODE_NETWORK, 1 if ip.version == 4 else 2, ip.packed, a.port)
        )
    return msgs.AddrV2(tuple(entries))


async def main(peers: list[str], v2: bool) -> None:
    message = addr_message(peers, v2)

    async def script(side: FakeSide) -> None:
        await side.handshake()
        await side.expect(msgs.GetAddr)
        await side.send(message)
        await side.silent()

    async with fake_peer(script) as address:
        print(address, flush=True)
        # until the test closes our stdin (or kills us)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addrv2", action="store_true")
    parser.add_argument("peers", nargs="+")
    args = parser.parse_args()
    asyncio.run(main(args.peers, args.addrv2))
