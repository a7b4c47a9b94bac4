"""Offers and commands: parsing, bonds, bad fields."""

from __future__ import annotations

import base64
import contextlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerpool.errors import MalformedLineError
from peerpool.joinmarket.offers import (
    Command,
    Offer,
    format_offer,
    offers_in,
    parse_offer,
    split_commands,
)


def test_several_commands_with_a_bond() -> None:
    bond = bytes(range(252))
    body = (
        "sw0reloffer 0 27300 100000000 0 0.00002!sw0absoffer 1 27300 5000000 0 300"
        f"!tbond {base64.b64encode(bond).decode()}"
    )
    offers = offers_in("J5maker", split_commands(body))
    assert [o.key for o in offers] == [("J5maker", 0), ("J5maker", 1)]
    assert offers[0].relative and offers[0].cjfee == Decimal("0.00002")
    assert not offers[1].relative and offers[1].cjfee == 300
    assert all(o.fidelity_bond == bond for o in offers)


def test_pass_through_commands() -> None:
    cmds = split_commands("fill 0 100000 pk commitment")
    assert cmds == [Command("fill", ("0", "100000", "pk", "commitment"))]
    assert cmds[0].text == "fill 0 100000 pk commitment"
    assert offers_in("J5m", cmds) == []


offer_st = st.builds(
    lambda oid, lo, span, txfee, rel, fee: Offer(
        "J5maker",
        oid,
        "sw0reloffer" if rel else "sw0absoffer",
        lo,
        lo + span,
        txfee,
        Decimal(fee) / Decimal(10**8) if rel else Decimal(fee),
    ),
    st.integers(0, 10**6),
    st.integers(0, 10**12),
    st.integers(0, 10**12),
    st.integers(0, 10**6),
    st.booleans(),
    st.integers(0, 10**7),
)


@given(offer_st)
def test_offer_format_parse_round_trip(offer: Offer) -> None:
    (cmd,) = split_commands(format_offer(offer))
    assert parse_offer("J5maker", cmd) == offer


@pytest.mark.parametrize(
    "text",
    [
        "sw0reloffer 0 1 2 3",
        "sw0reloffer x 1 2 3 0.1",
        "sw0reloffer 0 -1 2 3 0.1",
        "sw0reloffer 0 5 2 3 0.1",
        "sw0reloffer 0 1 2 3 nan",
        "sw0reloffer 0 1 2 3 1.5",
        "sw0reloffer 0 1 2 3 -0.1",
        "sw0absoffer 0 1 2 3 0.5",
        "sw0absoffer 0 1 99999999999999999 3 5",
        "sw0reloffer 0 1 2 3 0.1 extra",
    ],
)
def test_bad_offers(text: str) -> None:
    with pytest.raises(MalformedLineError):
        offers_in("J5m", split_commands(text))


@pytest.mark.parametrize("bond", ["@@@", "A" * 5000, "", "AAAA BBBB"])
def test_bad_bonds(bond: str) -> None:
    with pytest.raises(MalformedLineError):
        offers_in("J5m", split_commands(f"sw0reloffer 0 1 2 3 0.1!tbond {bond}"))


@given(st.text(max_size=200))
def test_any_text_parses_or_fails_typed(text: str) -> None:
    with contextlib.suppress(MalformedLineError):
        offers_in("J5m", split_commands(text))


@pytest.mark.parametrize(
    "fields",
    [
        "0 ² 4000000 0 0.0002",  # isdigit() is true for '²'; int() refuses it (issue 9.3)
        "0 27300 " + "9" * 5000 + " 0 0.0002",  # past int()'s digit limit
        "² 27300 4000000 0 0.0002",
        "0 27300 4000000 0 \u0660.1",  # Arabic-Indic zero: Decimal would take it
    ],
)
def test_offer_numbers_are_ascii_and_bounded(fields: str) -> None:
    with pytest.raises(MalformedLineError):
        parse_offer("J5x", Command("sw0reloffer", tuple(fields.split(" "))))
