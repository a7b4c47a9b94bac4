"""`mypy --strict` on a user's script that uses the public API of every
package: clean, and every public name has its real type (a lazy import or an
`__aenter__` typed as the base class would make names `Any` or lose methods)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("user_script.py")


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_user_script_is_clean_under_mypy_strict(tmp_path: Path) -> None:
    done = _mypy("--warn-return-any", str(SCRIPT))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found in 1 source file" in done.stdout


def test_public_names_are_not_any(tmp_path: Path) -> None:
    # reveal_type of names that once were Any: mypy must name the class
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from peerpool.joinmarket import DirectoryServer, MultiDirectoryClient, ServerConfig\n"
        "async def f() -> None:\n"
        "    async with MultiDirectoryClient([], 'regtest') as m:\n"
        "        reveal_type(m)\n"
        "reveal_type(DirectoryServer)\n"
        "reveal_type(ServerConfig)\n"
    )
    done = _mypy(str(probe))
    out = done.stdout
    assert 'Revealed type is "peerpool.joinmarket.multi.MultiDirectoryClient"' in out, out
    assert "-> peerpool.joinmarket.server.DirectoryServer" in out, out
    assert "peerpool.joinmarket.server_state.ServerConfig" in out, out
    assert "Any" not in out, out


def test_mesh_chord_index_and_pool_names_are_not_any(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from peerpool.chord import ChordNode, get_hashes_batch\n"
        "from peerpool.encoding import sha256d\n"
        "from peerpool.index import parse_block\n"
        "from peerpool.index.store import IndexStore\n"
        "from peerpool.mesh import MeshNode\n"
        "from peerpool.mesh.pools import ConnectionPools\n"
        "from peerpool.pool import NamedPools, pool_budgets\n"
        "async def f(mesh: MeshNode) -> None:\n"
        "    async with MeshNode() as m, ChordNode(mesh) as c:\n"
        "        reveal_type(m)\n"
        "        reveal_type(c)\n"
        "reveal_type(parse_block(b''))\n"
        "reveal_type(IndexStore('db', 'bsv-regtest').tx)\n"
        "reveal_type(ConnectionPools)\n"
        "reveal_type(NamedPools)\n"
        "reveal_type(pool_budgets)\n"
        "reveal_type(get_hashes_batch)\n"
        "reveal_type(sha256d)\n"
    )
    done = _mypy(str(probe))
    out = done.stdout
    assert 'Revealed type is "peerpool.mesh.node.MeshNode"' in out, out
    assert 'Revealed type is "peerpool.chord.node.ChordNode"' in out, out
    assert 'Revealed type is "peerpool._core.Columns"' in out, out
    assert "peerpool.index.store.TxLocation" in out, out
    assert "-> peerpool.mesh.pools.ConnectionPools" in out, out
    assert "peerpool.pool.named.NamedPools" in out, out
    assert out.count("Revealed type") == 9, out
    # signatures may take Any arguments; no name itself may be Any
    assert 'Revealed type is "Any"' not in out, out
