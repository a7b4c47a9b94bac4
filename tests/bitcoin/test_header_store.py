"""HeadersStore on real mainnet headers (with the real A-branch reorg) and on
synthetic regtest chains: branches, best chain by work, reorg reports, bad
input, threads, and crash safety with a process killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from peerpool.bitcoin.blockfile import iter_blocks
from peerpool.bitcoin.header_store import HeadersStore
from peerpool.bitcoin.header_store.format import encode_batch
from peerpool.bitcoin.headers import hash_header
from peerpool.bitcoin.networks import get_network
from peerpool.errors import BadHeaderError, HeaderError, OrphanHeadersError
from tests.bitcoin.chain import mine_chain

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
REGTEST = get_network("btc-regtest")


def headers_of(*files: str) -> list[bytes]:
    return [bytes(r.data[:80]) for f in files for r in iter_blocks(DATA / f)]


def test_real_reorg_to_the_longer_a_branch(tmp_path: Path) -> None:
    main = headers_of("blk_0_to_4.dat")
    branch = headers_of("blk_3A.dat", "blk_4A.dat", "blk_5A.dat")
    with HeadersStore(tmp_path / "h", "btc-mainnet") as store:
        assert store.height == 0 and store.header_at(0) == main[0]  # genesis known
        r = store.connect(b"".join(main[1:]))
        assert (r.tip.height, r.added, r.reorg) == (4, 4, None)
        r = store.connect(b"".join(branch[:2]))  # 3A, 4A: as much work, not more
        assert not r.tip_changed and store.tip.hash == hash_header(main[4])
        r = store.connect(branch[2])  # 5A: the A branch is now longer
        assert r.reorg is not None
        assert r.reorg.common_ancestor.hash == hash_header(main[2])
        assert r.reorg.common_ancestor.height == 2
        assert r.reorg.old_tip.hash == hash_header(main[4])
        assert r.reorg.disconnected == [hash_header(h) for h in main[3:]]
        assert r.reorg.connected == [hash_header(h) for h in branch]
        assert store.height == 5 and store.header_at(3) == branch[0]
        assert not store.is_on_best_chain(hash_header(main[3]))
        assert store.header(hash_header(main[3])) == main[3]  # branches are kept
        assert len(store) == 8
    with HeadersStore(tmp_path / "h", "btc-mainnet") as reopened:
        assert reopened.tip.hash == hash_header(branch[2]) and len(reopened) == 8


def test_best_chain_is_chosen_by_work_not_height(tmp_path: Path) -> None:
    # mainnet headers at difficulty 1 carry far more work than regtest ones, so
    # put a long easy branch and a short hard one on the same store: regtest
    # with a chain whose first header has a harder target.
    from tests.bitcoin.chain import mine_header

    with HeadersStore(tmp_path / "h", REGTEST) as store:
        easy = mine_chain(REGTEST.genesis_header, 3, tag=1)
        store.connect(easy)
        assert store.height == 3
        # one header at bits 0x1f7fffff has 256x the work of a 0x207fffff one
        hard = mine_header(REGTEST.genesis_hash, 1_700_000_100, bits=0x1F7FFFFF, tag=2)
        r = store.connect(hard)
        assert r.reorg is not None and store.height == 1
        assert store.tip.hash == hash_header(hard)
        assert r.reorg.common_ancestor.height == 0 and len(r.reorg.disconnected) == 3


def test_bad_headers_are_typed_and_the_valid_prefix_is_kept(tmp_path: Path) -> None:
    chain = mine_chain(REGTEST.genesis_header, 20)
    with HeadersStore(tmp_path / "h", REGTEST) as store:
        broken = bytearray(chain)
        broken[10 * 80 + 76] ^= 0xFF  # header 10's nonce: proof of work fails (or link after)
        with pytest.raises(BadHeaderError) as info:
            store.connect(bytes(broken))
        assert info.value.index in (10, 11)
        assert store.height == info.value.index
        with pytest.raises(OrphanHeadersError):
            store.connect(chain[15 * 80 :])  # header 15's parent was never stored
        with pytest.raises(HeaderError):
            store.connect(chain[:79])
        mainnet_genesis = headers_of("blk_0_to_4.dat")[1]
        with pytest.raises(OrphanHeadersError):
            store.connect(mainnet_genesis)
        r = store.connect(chain)  # the good batch again: only the missing ones are added
        assert store.height == 20 and r.added == 20 - info.value.index


def test_pow_limit_of_the_network_is_enforced(tmp_path: Path) -> None:
    from tests.bitcoin.chain import mine_header

    # regtest bits are far above mainnet's limit: a valid regtest header on a
    # mainnet store must be refused even though it meets its own target
    mainnet = get_network("btc-mainnet")
    with HeadersStore(tmp_path / "h", mainnet) as store:
        h = mine_header(mainnet.genesis_hash, 1_700_000_000)
        with pytest.raises(BadHeaderError) as info:
            store.connect(h)
        assert info.value.reason == "bits-above-pow-limit" and store.height == 0


def test_locator_is_dense_then_exponential(tmp_path: Path) -> None:
    with HeadersStore(tmp_path / "h", REGTEST) as store:
        store.connect(mine_chain(REGTEST.genesis_header, 100))
        loc = store.locator()
        heights = [store.height_of(h) for h in loc]
        assert heights[:11] == list(range(100, 89, -1))
        assert heights[-1] == 0 and heights == sorted(heights, reverse=True)
        assert len(loc) < 25


def test_concurrent_readers_and_a_writer(tmp_path: Path) -> None:
    chain = mine_chain(REGTEST.genesis_header, 400)
    errors: list[BaseException] = []
    with HeadersStore(tmp_path / "h", REGTEST) as store:

        def read() -> None:
            try:
                for _ in range(2000):
                    h = store.height
                    top = store.header_at(h)
                    assert top is not None and store.height_of(hash_header(top)) == h
                    store.locator()
            except BaseException as exc:  # reported below
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(3)]
        for t in readers:
            t.start()
        for i in range(0, len(chain), 80 * 20):
            store.connect(chain[i : i + 80 * 20])
        for t in readers:
            t.join(timeout=60)
        assert not errors and store.height == 400


WRITER = """
import sys
from peerpool.bitcoin.header_store import HeadersStore
from peerpool.bitcoin.networks import get_network
chain = open(sys.argv[2], "rb").read()
store = HeadersStore(sys.argv[1], get_network("btc-regtest"), fsync_interval=3600)
for i in range(0, len(chain), 80 * 50):
    store.connect(chain[i : i + 80 * 50])
    print(store.height, flush=True)
import time; time.sleep(60)
"""


def test_killed_mid_write_reopens_with_everything_flushed(tmp_path: Path) -> None:
    chain = mine_chain(REGTEST.genesis_header, 3000)
    (tmp_path / "chain").write_bytes(chain)
    for attempt in range(3):
        path = tmp_path / f"h{attempt}"
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(tmp_path / "chain")],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        reported = 0
        deadline = time.monotonic() + 60
        # kill it at a different point each time, while it is writing
        while reported < 500 * (attempt + 1) and time.monotonic() < deadline:
            reported = int(proc.stdout.readline())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        size = path.stat().st_size
        # tear a last batch too, as a write cut in half would
        with path.open("ab") as f:
            f.write(encode_batch(mine_chain(chain[-80:], 3, tag=1))[: 33 + 80 * attempt])
        with HeadersStore(path, REGTEST) as store:
            assert store.height >= reported
            for h in range(1, store.height + 1):
                assert store.header_at(h) == chain[(h - 1) * 80 : h * 80]
        assert path.stat().st_size <= size  # the torn batch was cut (and a torn one of its own)
