"""The README's quick tour must run as written: its ```python blocks are executed
in order, in one namespace, from the project root (where `../shared/data` resolves).
tests/test_wheel.py runs the same tour against the installed wheel."""

from __future__ import annotations

import os

from tests.readme_tour import ROOT, tour_blocks


def test_readme_examples_run(capsys: object) -> None:
    namespace: dict[str, object] = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for block in tour_blocks():
            exec(compile(block, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
