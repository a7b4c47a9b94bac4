"""The release wheel as a user gets it.

``make wheel`` builds it (abi3 for CPython 3.11+, linked with zig for
manylinux2014, stripped); it is installed with pip into a fresh virtualenv in a
temporary folder outside the checkout, and the README's tour and the
``peerpool`` command are run there, from a folder where ``../shared/data`` is
the real block files (as in the checkout), with nothing of the checkout on
``sys.path``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from tests.readme_tour import ROOT, tour_script

WHEEL_DIR = ROOT / "target" / "wheels"
SHARED = ROOT.parent / "shared"


def _elf_section_names(elf: bytes) -> list[str]:
    """The section names of a little-endian ELF64 file (the layout of x86_64 Linux)."""
    assert elf[:5] == b"\x7fELF\x02"
    shoff = int.from_bytes(elf[0x28:0x30], "little")
    entsize, count, names_index = (
        int.from_bytes(elf[at : at + 2], "little") for at in (0x3A, 0x3C, 0x3E)
    )
    headers = [elf[shoff + i * entsize : shoff + (i + 1) * entsize] for i in range(count)]
    strtab = headers[names_index]
    base = int.from_bytes(strtab[0x18:0x20], "little")
    names = []
    for header in headers:
        start = base + int.from_bytes(header[0:4], "little")
        names.append(elf[start : elf.index(b"\0", start)].decode())
    return names


def _run(command: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def wheel() -> Path:
    # make is incremental: seconds when `make test` has just built it
    built = _run(["make", "--no-print-directory", "-s", "wheel"], ROOT, timeout=3600)
    assert built.returncode == 0, built.stdout + built.stderr
    [path] = sorted(WHEEL_DIR.glob("peerpool-*.whl"))
    return path


@pytest.fixture(scope="module")
def user_dir(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel-user")
    assert ROOT not in base.resolve().parents
    # without pip of its own (ensurepip takes longer than the rest): this
    # process's pip installs into it with --python
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")], base)
    assert made.returncode == 0, made.stderr
    python = str(base / "venv/bin/python")
    # --no-compile: byte-compiling numpy and the rest is most of an install here
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-compile"]
    installed = _run([*pip, str(wheel)], base)
    assert installed.returncode == 0, installed.stderr
    (base / "shared").symlink_to(SHARED)  # so that ../shared/data resolves from work/
    (base / "work").mkdir()
    return base


def test_the_wheel_is_abi3_manylinux_and_stripped(wheel: Path) -> None:
    assert wheel.name.startswith("peerpool-0.1.0-cp311-abi3-")
    assert "manylinux_2_17_x86_64" in wheel.name  # glibc 2.17: every manylinux2014 system
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [extension] = [n for n in names if n.startswith("peerpool/_core") and n.endswith(".so")]
        assert extension == "peerpool/_core.abi3.so"
        data = archive.read(extension)
        meta = Parser().parsestr(archive.read("peerpool-0.1.0.dist-info/METADATA").decode())
        licenses = [n for n in names if n.endswith("/licenses/LICENSE")]
        assert licenses and b"MIT License" in archive.read(licenses[0])
    # stripped: no symbol table or debug sections (only the dynamic symbols it needs)
    sections = _elf_section_names(data)
    assert ".dynsym" in sections and ".text" in sections
    assert not [s for s in sections if s == ".symtab" or s.startswith(".debug")]
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["License-Expression"] == "MIT"
    classifiers = meta.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    # linters and test tools only behind their extras
    plain = [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert not [
        r for r in plain if r.split(">")[0].split("[")[0] in ("ruff", "mypy", "pytest", "mkdocs")
    ]
    # no public address exists yet: the documentation is named by its path in a checkout
    assert meta.get_all("Project-URL") == ["Documentation, file:site/index.html"]


def test_the_readme_tour_runs_from_the_installed_wheel(user_dir: Path) -> None:
    script = user_dir / "work" / "tour.py"
    script.write_text(
        tour_script()
        + "\nimport peerpool, peerpool._core\n"
        + "print('FROM', peerpool.__file__, peerpool._core.__file__)\n"
    )
    done = _run([str(user_dir / "venv/bin/python"), "-I", str(script)], user_dir / "work")
    assert done.returncode == 0, done.stderr
    where = done.stdout.strip().splitlines()[-1].split()
    assert where[0] == "FROM"
    for path in where[1:]:
        assert Path(path).is_relative_to(user_dir / "venv"), path
        assert not Path(path).is_relative_to(ROOT), path


def test_the_command_runs_from_the_installed_wheel(user_dir: Path) -> None:
    peerpool = str(user_dir / "venv/bin/peerpool")
    version = _run([peerpool, "--version"], user_dir / "work")
    assert (version.returncode, version.stdout.strip()) == (0, "peerpool 0.1.0")
    scan = _run([peerpool, "scan", "../shared/data/277647.dat"], user_dir / "work")
    assert scan.returncode == 0, scan.stderr
    assert "merkle roots: 1 ok, 0 mismatched" in scan.stdout
    missing = _run([peerpool, "scan", "no-such.dat"], user_dir / "work")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "peerpool scan: no-such.dat: No such file or directory"


def test_the_extension_uses_only_the_limited_api_of_3_11(wheel: Path) -> None:
    # abi3audit (dev extra) reads the extension's imported symbols against the
    # stable ABI's list: a wheel tagged abi3 that is not would crash on 3.12+
    abi3audit = str(Path(sys.executable).parent / "abi3audit")
    audit = _run([abi3audit, "--strict", "--verbose", str(wheel)], ROOT)
    said = " ".join((audit.stdout + audit.stderr).split())
    assert audit.returncode == 0, said
    assert "1 extensions scanned; 0 ABI version mismatches and 0 ABI violations found" in said


@pytest.mark.parametrize("minor", [10, 11, 12, 13, 14])
def test_one_wheel_installs_on_every_cpython_from_3_11(wheel: Path, minor: int) -> None:
    # pip's own rule (packaging.tags): the interpreter's supported tags for a
    # manylinux2014 x86_64 system against the tags in the file name
    from packaging.tags import cpython_tags
    from packaging.utils import parse_wheel_filename

    _, _, _, wheel_tags = parse_wheel_filename(wheel.name)
    supported = set(cpython_tags((3, minor), platforms=["manylinux_2_17_x86_64"]))
    assert bool(wheel_tags & supported) == (minor >= 11)
