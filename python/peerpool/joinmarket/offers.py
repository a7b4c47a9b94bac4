"""JoinMarket commands inside messages, and the offers a taker collects.

A message body may hold several commands separated by ``!`` (a maker answers
``!orderbook`` with all its offers and a ``!tbond`` proof in one private
message). Offers are ``<ordertype> <oid> <minsize> <maxsize> <txfee> <cjfee>``;
``cjfee`` is a fraction for relative offers and satoshis for absolute ones.
Fidelity-bond proofs stay opaque bytes: checking them needs the blockchain.
Everything else (``!fill``, ``!auth``, ``!ioauth``, ``!tx``, ``!sig``, ...) is
passed through as a :class:`Command` for the caller.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from peerpool.errors import MalformedLineError

ORDERBOOK = "orderbook"
TBOND = "tbond"
RELATIVE_OFFERS = frozenset({"sw0reloffer", "swreloffer", "reloffer"})
ABSOLUTE_OFFERS = frozenset({"sw0absoffer", "swabsoffer", "absoffer"})
OFFER_TYPES = RELATIVE_OFFERS | ABSOLUTE_OFFERS
# The commands of the coinjoin negotiation (jmdaemon/protocol.py), passed through.
SESSION_COMMANDS = frozenset(
    {"fill", "pubkey", "auth", "ioauth", "tx", "sig", "error", "push", "hp2", "cancel"}
)
KNOWN_COMMANDS = OFFER_TYPES | SESSION_COMMANDS | {ORDERBOOK, TBOND}
# A fidelity-bond proof is 252 bytes (jmclient FidelityBondProof); allow slack.
MAX_BOND_PROOF_BYTES = 1024
MAX_SATOSHIS = 21_000_000 * 100_000_000


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join((self.name, *self.args))


def split_commands(body: str) -> list[Command]:
    """``"cmd a b!cmd2 c"`` -> [Command("cmd", ("a", "b")), Command("cmd2", ("c",))]."""
    commands = []
    for chunk in body.split("!"):
        if not chunk:
            continue
        name, *args = chunk.split(" ")
        if not name:
            raise MalformedLineError("command with an empty name")
        commands.append(Command(name, tuple(args)))
    return commands


@dataclass(frozen=True, slots=True)
class Offer:
    """One maker's offer from an orderbook line (``!sw0reloffer``, ``!sw0absoffer``, ...).

    ``cjfee`` is a fraction of the amount for a relative offer and satoshis for
    an absolute one; ``fidelity_bond`` is the bond proof that came with the
    offer, if any.
    """

    counterparty: str
    oid: int
    ordertype: str
    minsize: int
    maxsize: int
    txfee: int
    cjfee: Decimal  # fraction for relative offers, satoshis for absolute ones
    fidelity_bond: bytes | None = None

    @property
    def key(self) -> tuple[str, int]:
        """What identifies an offer across directories."""
        return (self.counterparty, self.oid)

    @property
    def relative(self) -> bool:
        """True for a relative-fee offer (``cjfee`` is a fraction of the amount)."""
        return self.ordertype in RELATIVE_OFFERS


# ASCII digits: str.isdigit() accepts '²', which int() refuses
_SATOSHIS = re.compile(r"[0-9]{1,16}")
_OID = re.compile(r"[0-9]{1,9}")
_FRACTION = re.compile(r"[0-9.eE+-]{1,24}")


def _amount(text: str, what: str) -> int:
    if _SATOSHIS.fullmatch(text) is None:
        raise MalformedLineError(f"offer {what} {text[:20]!r} is not a satoshi amount")
    value = int(text)
    if value > MAX_SATOSHIS:
        raise MalformedLineError(f"offer {what} exceeds the supply")
    return value


def parse_offer(counterparty: str, command: Command, bond: bytes | None = None) -> Offer:
    if command.name not in OFFER_TYPES:
        raise MalformedLineError(f"{command.name!r} is not an offer type")
    if len(command.args) != 5:
        raise MalformedLineError(f"{command.name} needs 5 fields, got {len(command.args)}")
    oid_text, min_text, max_text, txfee_text, cjfee_text = command.args
    if _OID.fullmatch(oid_text) is None:
        raise MalformedLineError(f"offer id {oid_text[:20]!r} is not a small integer")
    minsize = _amount(min_text, "minsize")
    maxsize = _amount(max_text, "maxsize")
    if minsize > maxsize:
        raise MalformedLineError("offer minsize is above maxsize")
    if command.name in RELATIVE_OFFERS:
        try:
            if _FRACTION.fullmatch(cjfee_text) is None:
                raise InvalidOperation
            cjfee = Decimal(cjfee_text)
        except (InvalidOperation, ValueError, ArithmeticError):
            raise MalformedLineError(
                f"relative cjfee {cjfee_text[:20]!r} is not a number"
            ) from None
        if not cjfee.is_finite() or cjfee < 0 or cjfee >= 1:
            raise MalformedLineError("relative cjfee is not a fraction in [0, 1)")
    else:
        cjfee = Decimal(_amount(cjfee_text, "cjfee"))
    return Offer(
        counterparty,
        int(oid_text),
        command.name,
        minsize,
        maxsize,
        _amount(txfee_text, "txfee"),
        cjfee,
        bond,
    )


def parse_bond(command: Command) -> bytes:
    """The raw bytes of a ``!tbond <base64>`` proof (not verified here)."""
    if command.name != TBOND or len(command.args) != 1:
        raise MalformedLineError("!tbond takes exactly one base64 proof")
    text = command.args[0]
    if not text or len(text) > MAX_BOND_PROOF_BYTES * 4 // 3 + 4:
        raise MalformedLineError("fidelity-bond proof empty or too long")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedLineError("fidelity-bond proof is not base64") from None


def offers_in(counterparty: str, commands: list[Command]) -> list[Offer]:
    """The offers in one message; a ``!tbond`` in the same message is attached to
    each of them (that is how makers send it). Raises on any malformed offer."""
    bond = None
    for command in commands:
        if command.name == TBOND:
            bond = parse_bond(command)
    return [parse_offer(counterparty, c, bond) for c in commands if c.name in OFFER_TYPES]


def format_offer(offer: Offer) -> str:
    """The command text of an offer (what a maker sends)."""
    cjfee = format(offer.cjfee, "f")
    return f"{offer.ordertype} {offer.oid} {offer.minsize} {offer.maxsize} {offer.txfee} {cjfee}"
