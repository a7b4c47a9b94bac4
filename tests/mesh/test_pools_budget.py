"""Budgets by ratio (the documented rule) and the NamedPools bookkeeping."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerpool.errors import (
    InputError,
    PoolConfigError,
    PoolRatioError,
    TooFewConnectionsError,
    UnknownP2PError,
    UnknownPoolError,
)
from peerpool.pool import AddOutcome, NamedPools, pool_budgets


def test_ten_pools_of_a_tenth_are_valid() -> None:
    ratios = {f"p{i}": 0.1 for i in range(10)}
    assert sum(ratios.values()) != 1.0  # floats: 0.9999999999999999, hence the tolerance
    budgets = pool_budgets(100, ratios)
    assert list(budgets.values()) == [10] * 10
    budgets = pool_budgets(15, ratios)
    assert list(budgets.values()) == [1] * 9 + [6]  # floor each, the remainder to the last
    assert sum(budgets.values()) == 15  # type: ignore[arg-type]


def test_disabled_and_overflow_pools() -> None:
    budgets = pool_budgets(10, {"a": 0.5, "off": 0.0, "b": 0.5, "spill": -1.0})
    assert budgets == {"a": 5, "off": 0, "b": 5, "spill": None}


def test_remainder_goes_to_last_positive_pool_not_to_disabled_one() -> None:
    budgets = pool_budgets(7, {"a": 0.25, "b": 0.75, "off": 0.0})
    assert budgets == {"a": 1, "b": 6, "off": 0}


def test_floor_is_not_fooled_by_float_products() -> None:
    assert pool_budgets(100, {"a": 0.29, "b": 0.71}) == {"a": 29, "b": 71}


@pytest.mark.parametrize(
    ("max_connections", "ratios", "error"),
    [
        (1, {"a": 0.5, "b": 0.5}, TooFewConnectionsError),
        (10, {"a": 0.5, "b": 0.4}, PoolRatioError),
        (10, {"a": 0.6, "b": 0.6}, PoolRatioError),
        (10, {"a": 0.0}, PoolRatioError),
        (10, {"a": float("nan")}, PoolRatioError),
        (10, {"a": "1"}, PoolRatioError),
        (10, {}, PoolConfigError),
        (10.0, {"a": 1.0}, PoolConfigError),
    ],
)
def test_invalid_configs_raise_typed_errors(
    max_connections: object, ratios: dict, error: type
) -> None:
    with pytest.raises(error) as info:
        pool_budgets(max_connections, ratios)  # type: ignore[arg-type]
    assert isinstance(info.value, InputError)


def make() -> NamedPools:
    return NamedPools(
        4, {"in": ("net", 0.5), "out": ("net", 0.5), "x": ("other", -1)}, ["net", "other"]
    )


def test_unknown_network_and_pool() -> None:
    with pytest.raises(UnknownP2PError):
        NamedPools(4, {"a": ("nope", 1.0)}, ["net"])
    with pytest.raises(UnknownPoolError):
        make().add("p", {}, "nope")


def test_add_capacity_and_one_pool_per_peer() -> None:
    pools = make()
    assert pools.add("p1", {}, "in") is AddOutcome.ADDED
    assert pools.add("p1", {}, "in") is AddOutcome.ALREADY
    assert pools.add("p1", {}, "out") is AddOutcome.OTHER_POOL
    assert pools.add("p2", {}, "in") is AddOutcome.ADDED
    assert pools.add("p3", {}, "in") is AddOutcome.FULL
    assert pools.size() == 2 and pools.size("in") == 2
    assert pools.discard("p1") == "in"
    assert pools.add("p3", {}, "in") is AddOutcome.ADDED
    changes = pools.drain_changes()
    assert changes.added == {"in": {"p1", "p2", "p3"}} and changes.removed == {"in": {"p1"}}


def test_pending_apply_and_moves() -> None:
    pools = make()
    a, b = object(), object()
    gone, to_route = pools.pending("net", {"p1": a, "p2": b})
    assert gone == [] and sorted(to_route) == ["p1", "p2"]
    assert pools.apply("net", [("p1", "in", a, {}), ("p2", None, b, {})]) == ["p2"]
    # unchanged info objects are not routed again, rejected ones neither
    assert pools.pending("net", {"p1": a, "p2": b}) == ([], [])
    a2 = object()  # p1's connection changed (direction)
    assert pools.pending("net", {"p1": a2, "p2": b}) == ([], ["p1"])
    pools.apply("net", [("p1", "out", a2, {})])
    assert pools.pool_of("p1") == "out"
    changes = pools.drain_changes()
    assert changes.added == {"in": {"p1"}, "out": {"p1"}} and changes.removed == {"in": {"p1"}}
    assert changes.unroutable == {"net": {"p2"}}
    gone, _ = pools.pending("net", {})
    assert sorted(gone) == ["p1", "p2"]
    for pid in gone:
        pools.forget("net", pid)
    # nothing kept about gone peers
    assert pools.size() == 0 and not pools.tracked("net") and not pools._rejected["net"]


@given(
    st.lists(st.integers(1, 1000), min_size=1, max_size=12),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 500),
)
def test_budget_property(weights: list[int], disabled: int, overflow: int, extra: int) -> None:
    total = sum(weights)
    ratios: dict[str, float] = {f"w{i}": w / total for i, w in enumerate(weights)}
    ratios.update({f"off{i}": 0.0 for i in range(disabled)})
    ratios.update({f"spill{i}": -1.0 for i in range(overflow)})
    max_connections = len(ratios) + extra
    budgets = pool_budgets(max_connections, ratios)
    positive = [budgets[f"w{i}"] for i in range(len(weights))]
    assert sum(positive) == max_connections  # type: ignore[arg-type]
    for i, w in enumerate(weights[:-1]):
        assert budgets[f"w{i}"] == math.floor(w / total * max_connections + 1e-9)
    assert all(budgets[f"off{i}"] == 0 for i in range(disabled))
    assert all(budgets[f"spill{i}"] is None for i in range(overflow))
