"""The ring core driven by the simulator: routing, joins, hand-off, churn, lying nodes."""

from __future__ import annotations

import bisect
import math
from collections import Counter

import pytest

from peerpool.chord import ops
from peerpool.chord.ring import RING_SIZE, get_hashes
from peerpool.chord.sim import Simulator
from peerpool.chord.types import node_id
from peerpool.errors import ChordStateError


def _hop_counts(sim: Simulator) -> Counter[int]:
    total: Counter[int] = Counter()
    for core in sim.alive():
        total.update(core.hops)
        core.hops.clear()
    return total


@pytest.mark.parametrize("n", [64, 512])
def test_every_key_is_read_back_from_every_kind_of_origin_in_log_hops(n: int) -> None:
    sim = Simulator(seed=n)
    cores = sim.build(n)
    keys = {f"key-{i}": f"value-{i}".encode() for i in range(200)}
    for key, value in keys.items():
        sim.set(sim.rng.choice(cores), key, value)
    _hop_counts(sim)
    for key, value in keys.items():
        assert sim.get(sim.rng.choice(cores), key) == value
    hops = _hop_counts(sim)
    assert max(hops) <= math.log2(n) + 2
    mean = sum(h * c for h, c in hops.items()) / sum(hops.values())
    # Chord's expected path is 1/2 log2 n; allow a margin, not a different law.
    assert mean <= 0.5 * math.log2(n) + 1.5
    # Each node routes through O(log n) others.
    assert max(len(c.routing.known()) for c in cores) <= 2 * math.log2(n) + 8


def test_the_same_run_goes_through_the_byte_codec() -> None:
    sim = Simulator(seed=7, codec=True)
    cores = sim.build(40)
    for i in range(30):
        sim.set(cores[i], f"k{i}", f"v{i}")
    assert [sim.get(cores[-1 - i], f"k{i}") for i in range(30)] == [f"v{i}" for i in range(30)]
    assert sim.get(cores[0], "never set") is None


def test_a_missing_key_is_answered_as_missing_by_the_owners() -> None:
    sim = Simulator(seed=3)
    cores = sim.build(50)
    before = sim.requests
    assert sim.get(cores[0], b"nothing here") is None
    # Three "missing" answers decide it: no waiting for the other two.
    assert sim.requests - before <= 3 * (math.log2(50) + 2)


def test_each_position_is_held_by_its_owner_and_the_next_two() -> None:
    sim = Simulator(seed=4)
    cores = sim.build(30)
    sim.set(cores[0], "replicated", "yes")
    for method, position in enumerate(get_hashes("replicated")):
        owner = sim.owner_of(position)
        holders = [owner, *[sim.nodes[n.peer_id].core for n in owner.routing.successors[:2]]]
        for core in holders:
            entry = core.store.get((method, position))
            assert entry is not None and entry.value == "yes"


def test_100_three_node_joins_in_a_row_all_complete() -> None:
    for run in range(100):
        sim = Simulator(seed=1000 + run)
        a, b, c = sim.new_node(), sim.new_node(), sim.new_node()
        sim.set(a, "before", "joins")  # alone: a holds all five positions
        sim.join(b, a)
        sim.join(c, b if run % 2 else a)
        sim.stabilise_all(2)
        ring = sorted((a, b, c), key=lambda x: x.me.id)
        for i, core in enumerate(ring):
            assert core.routing.successor.peer_id == ring[(i + 1) % 3].me.peer_id
            assert core.routing.predecessor is not None
            assert core.routing.predecessor.peer_id == ring[i - 1].me.peer_id
        for core in (a, b, c):
            assert sim.get(core, "before") == "joins"


def test_joins_one_by_one_hand_keys_to_the_new_owners() -> None:
    sim = Simulator(seed=5)
    first = sim.new_node()
    for i in range(100):
        sim.set(first, f"k{i}", f"v{i}")
    cores = [first]
    for _ in range(24):
        core = sim.new_node()
        sim.join(core, sim.rng.choice(cores))
        cores.append(core)
        sim.stabilise_all(1)
    sim.heal(3)
    # Each position now sits on its true owner (not only on the first node).
    for i in range(100):
        for method, position in enumerate(get_hashes(f"k{i}")):
            assert sim.owner_of(position).store.get((method, position)) is not None
        assert sim.get(sim.rng.choice(cores), f"k{i}") == f"v{i}"
    assert len(first.primary_entries()) < 500


def test_leave_hands_everything_to_the_successor() -> None:
    sim = Simulator(seed=6)
    cores = sim.build(20)
    for i in range(100):
        sim.set(cores[i % 20], f"k{i}", f"v{i}")
    leaver = cores[3]
    sim.run(leaver, ops.hand_off(leaver, int(sim.now * 1000)))
    sim.kill([leaver])  # gone for good; nobody may need it
    sim.heal(2)
    others = sim.alive()
    for i in range(100):
        assert sim.get(others[i % len(others)], f"k{i}") == f"v{i}"
    # The broadcast reached the others: no live node still routes through it.
    assert all(leaver.me.peer_id not in {n.peer_id for n in c.routing.known()} for c in sim.alive())


def test_churn_kill_a_fifth_then_more_while_writing_loses_no_key() -> None:
    sim = Simulator(seed=8)
    cores = sim.build(150)
    keys = {f"k{i}": f"v{i}" for i in range(300)}
    for key, value in keys.items():
        sim.set(sim.rng.choice(cores), key, value)
    sim.heal(1)
    sim.kill(sim.rng.sample(cores, 30))  # 20% at once
    sim.heal(3)
    assert {k: sim.get(sim.rng.choice(sim.alive()), k) for k in keys} == keys
    for step in range(4):  # then more, while writing, repaired in between
        sim.kill(sim.rng.sample(sim.alive(), 6))
        for i in range(40):
            keys[f"w{step}-{i}"] = f"x{step}-{i}"
            sim.set(sim.rng.choice(sim.alive()), f"w{step}-{i}", keys[f"w{step}-{i}"])
        sim.heal(2)
    assert {k: sim.get(sim.rng.choice(sim.alive()), k) for k in keys} == keys
    # Repair restored the copies: every position that survived somewhere has
    # r live holders again (its owner and the next two).
    survived = 0
    for key in keys:
        for method, position in enumerate(get_hashes(key)):
            if not any(c.store.get((method, position)) for c in sim.alive()):
                continue
            survived += 1
            owner = sim.owner_of(position)
            held = [owner, *[sim.nodes[n.peer_id].core for n in owner.routing.successors[:2]]]
            assert all(c.store.get((method, position)) is not None for c in held)
    assert survived >= 0.95 * 5 * len(keys)


def test_a_lying_node_is_outvoted_by_the_five_positions() -> None:
    sim = Simulator(seed=9)
    cores = sim.build(40)
    keys = {f"k{i}": f"v{i}" for i in range(100)}
    for key, value in keys.items():
        sim.set(cores[0], key, value)
    liar = cores[5]
    sim.nodes[liar.me.peer_id].liar = True
    lied_to = 0
    for key, value in keys.items():
        owners = [sim.owner_of(p) for p in get_hashes(key)]
        lied_to += liar in owners
        assert sim.get(cores[1], key) == value
        assert sim.get(cores[2], "absent " + key) is None
    assert lied_to > 0  # the liar did own some of the positions asked


def test_unjoin_hands_off_and_keeps_querying() -> None:
    sim = Simulator(seed=10)
    cores = sim.build(10)
    for i in range(50):
        sim.set(cores[0], f"k{i}", f"v{i}")
    quitter = cores[4]
    sim.run(quitter, ops.hand_off(quitter, int(sim.now * 1000)))
    sim.stabilise_all(2)
    assert len(quitter.store) == 0
    for i in range(50):
        assert sim.get(quitter, f"k{i}") == f"v{i}"
    walked = sim.run(quitter, ops.walk(quitter))
    assert {k.decode() for k, e in walked.items() if e.value is not None} == {
        f"k{i}" for i in range(50)
    }


def _widest_choice(sim: Simulator, peer_id: str, choices: int) -> int:
    """The oracle: which candidate id falls in the widest arc of the live ring."""
    ids = sorted(c.me.id for c in sim.alive() if c.me.peer_id != peer_id)
    arcs = []
    for choice in range(choices):
        k = bisect.bisect_left(ids, node_id(peer_id, choice))
        arcs.append(((ids[k % len(ids)] - ids[k - 1]) % RING_SIZE, -choice))
    return -max(arcs)[1]


@pytest.mark.parametrize("choices", [1, 8])
def test_a_joining_node_takes_the_candidate_id_in_the_widest_arc(choices: int) -> None:
    sim = Simulator(seed=77, id_choices=choices)
    cores = sim.build(40)
    for i in range(50):
        sim.set(cores[i % 40], f"k{i}", f"v{i}")
    newcomer = sim.new_node()
    expected = _widest_choice(sim, newcomer.me.peer_id, choices)
    sim.join(newcomer, cores[3])
    assert newcomer.me.choice == expected
    assert newcomer.me.id == node_id(newcomer.me.peer_id, expected)
    assert newcomer.routing.me is newcomer.me
    if choices == 1:
        assert newcomer.me.id == node_id(newcomer.me.peer_id)  # py2p's id
    sim.heal(3)
    for i in range(50):
        assert sim.get(newcomer, f"k{i}") == f"v{i}"
        assert sim.get(cores[i % 40], f"k{i}") == f"v{i}"


def test_a_node_that_holds_data_or_is_known_keeps_its_id() -> None:
    sim = Simulator(seed=3, id_choices=8)
    a, b = sim.new_node(), sim.new_node()
    sim.set(b, "mine", "already")  # alone, it stored this under its current id
    sim.join(b, a)
    assert b.me.choice == 0
    with pytest.raises(ChordStateError):
        b.take_choice(1)


def test_id_choices_even_out_how_much_of_the_ring_each_node_owns() -> None:
    def widest(choices: int) -> float:
        cores = Simulator(seed=9, id_choices=choices).build(2000)
        ids = sorted(c.me.id for c in cores)
        return max((ids[i] - ids[i - 1]) % RING_SIZE for i in range(len(ids))) * 2000 / RING_SIZE

    # py2p's ids: the widest arc of 2,000 random points is about ln(2000) = 7.6x the mean.
    assert widest(1) > 4.0
    assert widest(8) < 3.5
