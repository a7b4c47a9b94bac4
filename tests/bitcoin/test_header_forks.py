"""Fork queries of HeadersStore (chains, ancestor, common_ancestor,
chainwork_at) on synthetic regtest chains and on the real mainnet A-branch,
before and after a reopen (the queries must not depend on how the runs were
loaded)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from peerpool.bitcoin.header_store import HeadersStore
from peerpool.bitcoin.headers import hash_header
from peerpool.bitcoin.networks import get_network
from peerpool.errors import UnknownHeaderError
from tests.bitcoin.chain import mine_chain
from tests.bitcoin.test_header_store import headers_of

REGTEST = get_network("btc-regtest")


def split(raw: bytes) -> list[bytes]:
    return [raw[i : i + 80] for i in range(0, len(raw), 80)]


def build(store: HeadersStore) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Genesis - 1..10 (main); a fork B of 4 on height 6; a fork C of 2 on B's
    second header (height 8), in batches of odd sizes so runs split mid-branch."""
    main = split(mine_chain(REGTEST.genesis_header, 10))
    b = split(mine_chain(main[5], 4, tag=1))  # heights 7..10
    c = split(mine_chain(b[1], 2, tag=2))  # heights 9..10
    store.connect(b"".join(main[:3]))
    store.connect(b"".join(main[3:]))
    store.connect(b"".join(b[:1]))
    store.connect(b"".join(b[1:]))
    store.connect(b"".join(c))
    return main, b, c


def check_queries(store: HeadersStore, main: list[bytes], b: list[bytes], c: list[bytes]) -> None:
    h = hash_header
    chains = store.chains()
    # main and B both reach height 10 with equal work: the first seen stays best
    assert [(x.tip.hash, x.tip.height, x.fork_point.height, x.is_best) for x in chains] == [
        (h(main[-1]), 10, 10, True),
        (h(b[-1]), 10, 6, False),
        (h(c[-1]), 10, 6, False),
    ]
    assert [x.length for x in chains] == [0, 4, 4]
    assert chains[0].tip.chainwork == chains[1].tip.chainwork == store.tip.chainwork
    # common ancestors: of two forks, of a header and its own ancestor, of a header and itself
    assert store.common_ancestor(h(b[-1]), h(main[-1])).hash == h(main[5])
    assert store.common_ancestor(h(c[-1]), h(b[-1])).hash == h(b[1])
    assert store.common_ancestor(h(c[0]), h(main[2])).hash == h(main[2])
    assert store.common_ancestor(h(main[7]), h(main[7])).height == 8
    assert store.common_ancestor(h(c[1]), REGTEST.genesis_hash).height == 0
    # ancestors walk the given header's own branch, across runs
    assert store.ancestor(h(c[-1]), 8).hash == h(b[1])
    assert store.ancestor(h(c[-1]), 3).hash == h(main[2])
    assert store.ancestor(h(c[-1]), 11) is None and store.ancestor(h(c[-1]), -1) is None
    # chainwork per height: equal below the fork, the branch's own above it
    per_header = store.chainwork_at(0)  # genesis has the same bits as every header here
    assert per_header is not None and per_header > 0
    for height in range(11):
        assert store.chainwork_at(height) == per_header * (height + 1)
        assert store.chainwork_at(height, h(c[-1])) == per_header * (height + 1)
    assert store.chainwork_at(11) is None and store.chainwork_at(9, h(b[0])) is None
    with pytest.raises(UnknownHeaderError):
        store.common_ancestor(bytes(32), h(main[0]))
    with pytest.raises(UnknownHeaderError):
        store.chainwork_at(1, bytes(32))
    with pytest.raises(UnknownHeaderError):
        store.ancestor(b"\x01" * 32, 0)


def test_fork_queries_on_synthetic_branches(tmp_path: Path) -> None:
    with HeadersStore(tmp_path / "h", REGTEST) as store:
        main, b, c = build(store)
        check_queries(store, main, b, c)
    with HeadersStore(tmp_path / "h", REGTEST) as store:  # the runs as a reopen loads them
        check_queries(store, main, b, c)


def test_a_longer_branch_becomes_the_best_chain_in_the_listing(tmp_path: Path) -> None:
    with HeadersStore(tmp_path / "h", REGTEST) as store:
        main, b, _ = build(store)
        longer = split(mine_chain(b[-1], 1, tag=3))
        result = store.connect(longer[0])
        assert result.reorg is not None
        chains = store.chains()
        assert chains[0].tip.hash == hash_header(longer[0]) and chains[0].is_best
        assert chains[0].tip.height == 11
        old = next(x for x in chains if x.tip.hash == hash_header(main[-1]))
        assert old.fork_point.hash == hash_header(main[5]) and old.length == 4
        # the old branch's work stops at its tip; the new one has one header more
        assert store.chainwork_at(11, hash_header(main[-1])) is None
        work_10 = store.chainwork_at(10)
        work_11 = store.chainwork_at(11)
        assert work_10 is not None and work_11 is not None and work_11 > work_10


def test_real_mainnet_a_branch(tmp_path: Path) -> None:
    main = headers_of("blk_0_to_4.dat")
    branch = headers_of("blk_3A.dat", "blk_4A.dat", "blk_5A.dat")
    with HeadersStore(tmp_path / "h", "btc-mainnet") as store:
        store.connect(b"".join(main[1:]))
        store.connect(b"".join(branch))
        tips = {(x.tip.height, x.fork_point.height, x.is_best) for x in store.chains()}
        assert tips == {(5, 5, True), (4, 2, False)}
        ancestor = store.common_ancestor(hash_header(main[4]), hash_header(branch[-1]))
        assert ancestor.hash == hash_header(main[2]) and ancestor.height == 2
        assert store.chainwork_at(2, hash_header(main[4])) == ancestor.chainwork


def test_tip_and_reorg_reprs_show_hashes_in_display_order(tmp_path: Path) -> None:
    with HeadersStore(tmp_path / "h", REGTEST) as store:
        main, b, _ = build(store)
        result = store.connect(mine_chain(b[-1], 1, tag=3))
        text = repr(result)
        assert result.reorg is not None
        assert hash_header(main[-1])[::-1].hex() in text  # the old tip, disconnected
        assert hash_header(b[0])[::-1].hex() in text  # connected
        assert "\\x" not in text and re.search(r"\bb'", text) is None  # no bytes literal
        assert repr(store.tip) == (
            f"Tip(height=11, hash={store.tip.hash_hex}, chainwork={store.tip.chainwork:#x})"
        )
