"""Tombstone collection and the rebuild of a position whose every copy died,
on the simulator (the same ops the asyncio node runs, without sockets)."""

from __future__ import annotations

from peerpool.chord.core import ChordCore
from peerpool.chord.ring import get_hashes
from peerpool.chord.sim import Simulator


def _holders(sim: Simulator, key: str) -> dict[int, list[ChordCore]]:
    """For each of the key's positions, the live nodes holding an entry there."""
    out: dict[int, list[ChordCore]] = {}
    for method, position in enumerate(get_hashes(key)):
        out[method] = [c for c in sim.alive() if c.store.get((method, position)) is not None]
    return out


def test_tombstones_are_collected_once_old_and_held_by_every_replica() -> None:
    sim = Simulator(seed=11, tombstone_ttl=30.0)
    cores = sim.build(12)
    for i in range(20):
        sim.set(cores[i % 12], f"gone-{i}", "v")
    sim.set(cores[0], "kept", "still here")
    for i in range(20):
        sim.set(cores[(i + 5) % 12], f"gone-{i}", None)
    assert all(len(h) == 3 for i in range(20) for h in _holders(sim, f"gone-{i}").values())
    # Too young: a collecting round keeps every tombstone.
    sim.repair_all(collect=True)
    assert all(len(h) == 3 for i in range(20) for h in _holders(sim, f"gone-{i}").values())
    sim.now += 31.0
    sim.repair_all(collect=True)
    for i in range(20):
        assert all(not h for h in _holders(sim, f"gone-{i}").values()), f"gone-{i}"
        assert sim.get(cores[3], f"gone-{i}") is None
    assert sum(c.counters["tombstones_collected"] for c in cores) == 20 * 5 * 3
    assert sim.get(cores[7], "kept") == "still here"


def test_a_tombstone_a_replica_lacks_is_sent_first_and_collected_a_round_later() -> None:
    sim = Simulator(seed=12, tombstone_ttl=0.0)
    cores = sim.build(10)
    sim.set(cores[0], "k", "v")
    sim.set(cores[1], "k", None)
    method, position = 0, get_hashes("k")[0]
    owner = sim.owner_of(position)
    replica = owner.replica_targets()[0]
    replica_core = sim.nodes[replica.peer_id].core
    replica_core.store.discard((method, position))  # it missed the delete
    sim.now += 1.0
    sim.repair_all(collect=True)
    # The owner sent it the tombstone but did not collect: the replica had not agreed.
    assert owner.store.get((method, position)) is not None
    assert replica_core.store.get((method, position)) is not None
    sim.repair_all(collect=True)
    assert owner.store.get((method, position)) is None
    assert replica_core.store.get((method, position)) is None


def test_a_newer_write_after_the_delete_is_never_collected() -> None:
    sim = Simulator(seed=13, tombstone_ttl=0.0)
    cores = sim.build(10)
    sim.set(cores[0], "k", "v")
    sim.set(cores[1], "k", None)
    sim.set(cores[2], "k", "back")
    sim.now += 5.0
    sim.repair_all(collect=True)
    assert sim.get(cores[4], "k") == "back"
    assert all(len(h) == 3 for h in _holders(sim, "k").values())


def test_a_position_whose_every_copy_died_is_rebuilt_from_the_other_four() -> None:
    sim = Simulator(seed=21)
    cores = sim.build(30)
    keys = [f"key-{i}" for i in range(40)]
    for key in keys:
        sim.set(cores[0], key, f"value-of-{key}")
    # A key whose position 0 holders hold none of its other positions.
    for key in keys:
        holders = _holders(sim, key)
        dead = {c.me.peer_id for c in holders[0]}
        others = {c.me.peer_id for m in range(1, 5) for c in holders[m]}
        if len(dead) == 3 and not dead & others:
            break
    else:
        raise AssertionError("no key with separate holders in this ring")
    sim.kill([c for c in holders[0]])
    sim.heal()  # the ring closes over them, replica repair runs: position 0 stays lost
    assert not _holders(sim, key)[0]
    assert sim.rebuild_all() > 0
    position = get_hashes(key)[0]
    new_owner = sim.owner_of(position)
    entry = new_owner.store.get((0, position))
    assert entry is not None and entry.value == f"value-of-{key}"
    sim.repair_all()
    assert len(_holders(sim, key)[0]) == 3
    # Nothing else was lost either, and a second rebuild has nothing to do.
    sim.heal()
    assert sim.rebuild_all() == 0
    for k in keys:
        assert sim.get(cores[-1], k) == f"value-of-{k}"


def test_no_rebuild_without_a_majority_behind_the_value() -> None:
    sim = Simulator(seed=22)
    cores = sim.build(20)
    sim.set(cores[0], "k", "v")
    holders = _holders(sim, "k")
    # Only position 0's copies remain: one position is not a majority.
    for method in range(1, 5):
        for core in holders[method]:
            core.store.discard((method, get_hashes("k")[method]))
    assert sim.rebuild_all() == 0
    assert all(not _holders(sim, "k")[m] for m in range(1, 5))
