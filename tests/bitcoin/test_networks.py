"""The eight networks: magic bytes, ports, genesis headers and proof-of-work limits.

Genesis hashes are the published ones (asserted in both nodes' chainparams.cpp),
checked by hashing our headers with hashlib; mainnet's genesis is also compared
byte for byte with the first block of the real blk file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerpool.bitcoin.headers import bits_to_target, target_to_bits
from peerpool.bitcoin.networks import NETWORKS, Network, get_network
from peerpool.errors import InputError, PeerpoolError, UnknownNetworkError

DATA = Path(__file__).resolve().parents[2] / "../shared/data"

MAINNET_GENESIS = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
TESTNET3_GENESIS = "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943"
REGTEST_GENESIS = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
SIGNET_GENESIS = "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6"

EXPECTED = {
    # name: (magic, port, genesis hash, pow limit bits, is BSV)
    "bsv-mainnet": ("e3e1f3e8", 8333, MAINNET_GENESIS, 0x1D00FFFF, True),
    "bsv-testnet": ("f4e5f3f4", 18333, TESTNET3_GENESIS, 0x1D00FFFF, True),
    "bsv-stn": ("fbcec4f9", 9333, TESTNET3_GENESIS, 0x1D00FFFF, True),
    "bsv-regtest": ("dab5bffa", 18444, REGTEST_GENESIS, 0x207FFFFF, True),
    "btc-mainnet": ("f9beb4d9", 8333, MAINNET_GENESIS, 0x1D00FFFF, False),
    "btc-testnet": ("0b110907", 18333, TESTNET3_GENESIS, 0x1D00FFFF, False),
    "btc-signet": ("0a03cf40", 38333, SIGNET_GENESIS, 0x1E0377AE, False),
    "btc-regtest": ("fabfb5da", 18444, REGTEST_GENESIS, 0x207FFFFF, False),
}

# The default signet's challenge script (Bitcoin Core, SigNetParams)
SIGNET_CHALLENGE = bytes.fromhex(
    "512103ad5e0edad18cb1f0fc0d28a3d4f1f3e445640337489abb10404f2d1e086be430210359ef5021964fe2"
    "2d6f8e05b2463c9540ce96883fe3b278760f048f5189f2e6c452ae"
)


def double_sha256(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def display_hash(header: bytes) -> str:
    return double_sha256(header)[::-1].hex()


def test_all_eight_networks_are_known_by_name() -> None:
    assert set(NETWORKS) == set(EXPECTED)
    for name in EXPECTED:
        assert get_network(name) is NETWORKS[name]
        assert get_network(name).name == name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_network_constants(name: str) -> None:
    magic, port, genesis, bits, is_bsv = EXPECTED[name]
    network = get_network(name)
    assert network.magic == bytes.fromhex(magic)
    assert network.default_port == port
    assert len(network.genesis_header) == 80
    # hashed here with hashlib, not through the module's own helper
    assert display_hash(network.genesis_header) == genesis
    assert network.genesis_hash_hex == genesis
    assert network.pow_limit_bits == bits
    assert network.is_bsv is is_bsv
    assert network.supports_protoconf is is_bsv
    assert network.supports_extended_messages is is_bsv
    assert network.supports_segwit is not is_bsv


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_genesis_meets_its_own_proof_of_work_and_the_limit(name: str) -> None:
    network = get_network(name)
    version, prev, _merkle, _time, bits, _nonce = struct.unpack(
        "<i32s32sIII", network.genesis_header
    )
    assert version == 1
    assert prev == bytes(32)
    target = bits_to_target(bits)
    assert target <= network.pow_limit
    assert int.from_bytes(double_sha256(network.genesis_header), "little") <= target
    # the compact form of the limit truncates it, never rounds it up
    assert bits_to_target(network.pow_limit_bits) <= network.pow_limit


def test_magic_bytes_are_unique_so_a_peer_on_another_network_is_detected() -> None:
    magics = [network.magic for network in NETWORKS.values()]
    assert len(set(magics)) == len(magics)


def test_pow_limits_verbatim() -> None:
    assert get_network("btc-mainnet").pow_limit == (1 << 224) - 1
    assert get_network("bsv-regtest").pow_limit == (1 << 255) - 1
    assert get_network("btc-signet").pow_limit == 0x377AE << (256 - 40)


def test_regtest_halves_every_150_blocks() -> None:
    assert get_network("bsv-regtest").subsidy_halving_interval == 150
    assert get_network("bsv-mainnet").subsidy_halving_interval == 210_000


def test_signet_magic_is_derived_from_its_challenge() -> None:
    # BIP325: the first four bytes of sha256d of the serialized challenge script
    serialized = bytes([len(SIGNET_CHALLENGE)]) + SIGNET_CHALLENGE
    assert get_network("btc-signet").magic == double_sha256(serialized)[:4]


def test_mainnet_genesis_is_the_first_block_of_the_real_blk_file() -> None:
    data = (DATA / "blk_0_to_4.dat").read_bytes()
    magic, length = data[:4], int.from_bytes(data[4:8], "little")
    network = get_network("btc-mainnet")
    assert magic == network.magic  # Bitcoin's disk magic is its network magic
    assert data[8:88] == network.genesis_header
    assert get_network("bsv-mainnet").genesis_header == network.genesis_header
    # and block 1 builds on it
    block1 = data[8 + length :]
    assert block1[:4] == network.magic
    assert block1[8 + 4 : 8 + 36] == network.genesis_hash


def test_testnet_block_belongs_to_the_testnet_family() -> None:
    raw = (DATA / "testnet_block.raw").read_bytes()
    header = raw[:80]
    assert display_hash(header) == (
        "000000000000045e0b1660b6445b5e5c5ab63c9a4f956be7e1e69be04fa4497b"
    )
    bits = struct.unpack_from("<I", header, 72)[0]
    block_time = struct.unpack_from("<I", header, 68)[0]
    for name in ("btc-testnet", "bsv-testnet"):
        network = get_network(name)
        genesis_time = struct.unpack_from("<I", network.genesis_header, 68)[0]
        assert bits_to_target(bits) <= network.pow_limit
        assert int.from_bytes(double_sha256(header), "little") <= bits_to_target(bits)
        assert block_time > genesis_time
    # its proof of work is far above what regtest would need, far below mainnet's genesis
    assert bits_to_target(bits) < bits_to_target(0x1D00FFFF)


def test_unknown_network_is_a_typed_error_that_lists_the_names() -> None:
    with pytest.raises(UnknownNetworkError) as caught:
        get_network("bch-mainnet")
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, PeerpoolError)
    assert "bsv-regtest" in str(caught.value)
    assert "bch-mainnet" in str(caught.value)


def test_networks_are_immutable() -> None:
    network = get_network("bsv-regtest")
    with pytest.raises(dataclasses.FrozenInstanceError):
        network.default_port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        NETWORKS["x"] = network  # type: ignore[index]
    assert isinstance(network, Network)


@pytest.mark.parametrize(
    ("bits", "target"),
    [
        (0x1D00FFFF, 0xFFFF << 208),
        (0x207FFFFF, 0x7FFFFF << 232),
        (0x1B0404CB, 0x0404CB << 192),  # a real mainnet difficulty (block 100,000)
        (0x03123456, 0x123456),
        (0x02123456, 0x1234),
    ],
)
def test_compact_bits_known_values(bits: int, target: int) -> None:
    assert bits_to_target(bits) == target


def test_compact_bits_errors_are_typed() -> None:
    with pytest.raises(InputError):
        bits_to_target(0x04923456)  # sign bit set with a non-zero mantissa
    for zero in (0x01003456, 0x00000000):  # a zero target: no hash can meet it
        with pytest.raises(InputError):
            bits_to_target(zero)
    with pytest.raises(InputError):
        bits_to_target(1 << 32)
    with pytest.raises(InputError):
        target_to_bits(-1)
    with pytest.raises(InputError):
        target_to_bits(1 << 256)


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=(1 << 256) - 1))
def test_target_to_bits_truncates_to_three_significant_bytes(target: int) -> None:
    bits = target_to_bits(target)
    decoded = bits_to_target(bits)
    assert decoded <= target
    # only bits below the top three bytes (or the sign-avoiding fourth) are lost
    assert target - decoded < 1 << max(0, target.bit_length() - 15)
    assert not bits & 0x00800000  # never a negative encoding
    assert target_to_bits(decoded) == bits
