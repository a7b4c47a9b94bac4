"""Nicks, base58 and signed-message signatures."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerpool.errors import BadSignatureError
from peerpool.joinmarket.identity import (
    NickIdentity,
    b58encode,
    bitcoin_message_hash,
    is_valid_nick,
    nick_from_pubkey_hex,
    verify_message,
    verify_nick_signature,
)
from tests.joinmarket.helpers import identity


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"", ""),
        (b"\x00", "1"),
        (b"\x00\x00\x28\x7f\xb4\xcd", "11233QC4"),  # Bitcoin's base58 test vectors
        (bytes.fromhex("61"), "2g"),
        (bytes.fromhex("626262"), "a3gV"),
        (bytes.fromhex("636363"), "aPEr"),
        (bytes.fromhex("516b6fcd0f"), "ABnLTmg"),
    ],
)
def test_base58_vectors(raw: bytes, encoded: str) -> None:
    assert b58encode(raw) == encoded


def test_nick_derivation_follows_the_recipe() -> None:
    ident = identity(1)
    digest = hashlib.sha256(ident.pubkey_hex.encode()).digest()[:10]
    body = b58encode(digest)
    assert ident.nick == "J5" + body + "O" * (14 - len(body))
    assert len(ident.nick) == 16 and is_valid_nick(ident.nick)
    assert nick_from_pubkey_hex(ident.pubkey_hex) == ident.nick


@settings(max_examples=30)
@given(st.binary(min_size=32, max_size=32).filter(lambda b: b.strip(b"\0") != b""))
def test_nicks_are_well_formed(key: bytes) -> None:
    try:
        ident = NickIdentity(key)
    except ValueError:  # key >= the curve order: coincurve refuses it
        return
    assert is_valid_nick(ident.nick)


def test_message_hash_layout() -> None:
    msg = b"hello"
    expected = hashlib.sha256(
        hashlib.sha256(b"\x18Bitcoin Signed Message:\n\x05hello").digest()
    ).digest()
    assert bitcoin_message_hash(msg) == expected
    long = b"x" * 300  # CompactSize switches to 0xfd + 2 bytes at 253
    inner = b"\x18Bitcoin Signed Message:\n\xfd\x2c\x01" + long
    assert bitcoin_message_hash(long) == hashlib.sha256(hashlib.sha256(inner).digest()).digest()


@settings(max_examples=25)
@given(st.text(max_size=100))
def test_sign_verify_round_trip(text: str) -> None:
    ident = identity(3)
    sig = ident.sign(text)
    assert verify_message(text, sig, ident.pubkey_hex)
    verify_nick_signature(ident.nick, text, ident.pubkey_hex, sig)


def test_tampered_message_fails() -> None:
    ident = identity(3)
    sig = ident.sign("pay 1 btc")
    assert not verify_message("pay 2 btc", sig, ident.pubkey_hex)
    with pytest.raises(BadSignatureError, match="does not verify"):
        verify_nick_signature(ident.nick, "pay 2 btc", ident.pubkey_hex, sig)


def test_key_of_another_nick_is_a_spoof() -> None:
    alice, mallory = identity(1), identity(9)
    sig = mallory.sign("hi")
    with pytest.raises(BadSignatureError, match="does not belong"):
        verify_nick_signature(alice.nick, "hi", mallory.pubkey_hex, sig)


@pytest.mark.parametrize(
    ("pubkey", "sig"),
    [
        ("zz" * 33, "AAAA"),
        ("04" + "11" * 32, "AAAA"),
        ("02" + "00" * 32, "AAAA"),
    ],
)
def test_garbage_keys_and_signatures_are_typed(pubkey: str, sig: str) -> None:
    with pytest.raises(BadSignatureError):
        verify_nick_signature(identity(1).nick, "x", pubkey, sig)


def test_garbage_signature_is_false_not_an_exception() -> None:
    ident = identity(4)
    for sig in ("", "!!!", "A" * 200, "MEUCIQ=="):
        assert not verify_message("x", sig, ident.pubkey_hex)


def test_repr_hides_the_key() -> None:
    assert repr(identity(5)) == f"NickIdentity({identity(5).nick})"
