"""The eight networks peerpool speaks to, picked by name: ``get_network("bsv-regtest")``.

Every constant below comes from the chain parameters of the reference nodes:
Bitcoin SV's ``src/chainparams.cpp`` (classes CMainParams, CTestNetParams,
CStnParams, CRegTestParams) for the ``bsv-*`` networks and Bitcoin Core's
``src/kernel/chainparams.cpp`` (CMainParams, CTestNetParams, SigNetParams,
CRegTestParams) for the ``btc-*`` ones. ``btc-testnet`` is testnet3.

All four networks of each family share the genesis coinbase (and so the merkle
root); they differ in time, nonce and bits. BSV kept Bitcoin's genesis blocks
but changed the P2P magic bytes of mainnet, testnet and regtest so that its
nodes do not talk to Bitcoin ones; the genesis headers are built from these
fields at import and checked against the published hashes in the tests.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from peerpool.bitcoin.headers import target_to_bits

# re-exported: client, manager and the test helpers import it from here
from peerpool.encoding import sha256d as sha256d
from peerpool.errors import UnknownNetworkError

# The merkle root of every genesis block here (the one coinbase of 50 coins with
# "The Times 03/Jan/2009 ..."), as displayed; headers store it byte-reversed.
_GENESIS_MERKLE_ROOT_HEX: Final = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"

HEADER_SIZE: Final = 80


@dataclass(frozen=True)
class Network:
    """One network's constants. Hashes are in internal (wire) byte order."""

    name: str
    magic: bytes
    default_port: int
    genesis_header: bytes
    pow_limit: int
    pow_limit_bits: int
    is_bsv: bool
    subsidy_halving_interval: int

    @property
    def genesis_hash(self) -> bytes:
        return sha256d(self.genesis_header)

    @property
    def genesis_hash_hex(self) -> str:
        """The genesis hash as explorers and RPC show it (byte-reversed hex)."""
        return self.genesis_hash[::-1].hex()

    # BSV extends the protocol: protoconf, the 44-byte extended message header for
    # payloads of 4 GiB and more, and no segwit (so no witness inv types, no
    # wtxidrelay, no addrv2: those are Bitcoin Core's).
    @property
    def supports_protoconf(self) -> bool:
        return self.is_bsv

    @property
    def supports_extended_messages(self) -> bool:
        return self.is_bsv

    @property
    def supports_segwit(self) -> bool:
        return not self.is_bsv


def _genesis_header(time: int, nonce: int, bits: int) -> bytes:
    merkle_root = bytes.fromhex(_GENESIS_MERKLE_ROOT_HEX)[::-1]
    return struct.pack("<i32s32sIII", 1, bytes(32), merkle_root, time, bits, nonce)


# powLimit values, verbatim from the chain parameters
_POW_LIMIT_MAIN: Final = int("00000000" + "f" * 56, 16)
_POW_LIMIT_REGTEST: Final = int("7" + "f" * 63, 16)
_POW_LIMIT_SIGNET: Final = int("00000377ae" + "0" * 54, 16)

# genesis (time, nonce, bits) per chain
_MAIN_GENESIS: Final = _genesis_header(1231006505, 2083236893, 0x1D00FFFF)
_TESTNET_GENESIS: Final = _genesis_header(1296688602, 414098458, 0x1D00FFFF)
_REGTEST_GENESIS: Final = _genesis_header(1296688602, 2, 0x207FFFFF)
_SIGNET_GENESIS: Final = _genesis_header(1598918400, 52613770, 0x1E0377AE)


def _network(
    name: str, magic_hex: str, port: int, genesis: bytes, pow_limit: int, bsv: bool, halving: int
) -> Network:
    return Network(
        name=name,
        magic=bytes.fromhex(magic_hex),
        default_port=port,
        genesis_header=genesis,
        pow_limit=pow_limit,
        pow_limit_bits=target_to_bits(pow_limit),
        is_bsv=bsv,
        subsidy_halving_interval=halving,
    )


_ALL: Final = (
    # BSV: STN shares testnet's genesis; its magic is the only STN-specific byte string
    _network("bsv-mainnet", "e3e1f3e8", 8333, _MAIN_GENESIS, _POW_LIMIT_MAIN, True, 210_000),
    _network("bsv-testnet", "f4e5f3f4", 18333, _TESTNET_GENESIS, _POW_LIMIT_MAIN, True, 210_000),
    _network("bsv-stn", "fbcec4f9", 9333, _TESTNET_GENESIS, _POW_LIMIT_MAIN, True, 210_000),
    _network("bsv-regtest", "dab5bffa", 18444, _REGTEST_GENESIS, _POW_LIMIT_REGTEST, True, 150),
    _network("btc-mainnet", "f9beb4d9", 8333, _MAIN_GENESIS, _POW_LIMIT_MAIN, False, 210_000),
    _network("btc-testnet", "0b110907", 18333, _TESTNET_GENESIS, _POW_LIMIT_MAIN, False, 210_000),
    # the default signet's magic is sha256d(challenge script)[:4] (BIP325)
    _network("btc-signet", "0a03cf40", 38333, _SIGNET_GENESIS, _POW_LIMIT_SIGNET, False, 210_000),
    _network("btc-regtest", "fabfb5da", 18444, _REGTEST_GENESIS, _POW_LIMIT_REGTEST, False, 150),
)

NETWORKS: Final = MappingProxyType({network.name: network for network in _ALL})


def get_network(name: str) -> Network:
    """The network called ``name`` (``"bsv-regtest"``, ``"btc-mainnet"``, ...)."""
    try:
        return NETWORKS[name]
    except KeyError:
        known = ", ".join(NETWORKS)
        raise UnknownNetworkError(f"unknown network {name!r}; known networks: {known}") from None
