"""The README's quick tour: its ```python blocks, in order. They run in one
namespace from a folder where ``../shared/data`` holds the real block files."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def tour_blocks(text: str | None = None) -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text() if text is None else text, re.S)
    assert len(blocks) >= 5, "the quick tour lost its examples"
    return blocks


def tour_script() -> str:
    """The tour as one script (the blocks share a namespace, as they do in the README)."""
    return "\n".join(tour_blocks())
