"""Every public name has a docstring of its own: each name in the ``__all__``
of a public module, and each public method and property of a public class
(its own, or one it takes from a peerpool base class). The API reference of
the documentation site is rendered from exactly these docstrings, so a name
missing here is a blank entry there."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

# The packages a user imports from (what the API reference documents).
PUBLIC_MODULES = (
    "peerpool",
    "peerpool.errors",
    "peerpool.encoding",
    "peerpool.bitcoin",
    "peerpool.chord",
    "peerpool.index",
    "peerpool.joinmarket",
    "peerpool.mesh",
    "peerpool.net",
    "peerpool.pool",
    "peerpool.testing",
)


def _public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    # a module without __all__ (peerpool.errors): what it defines itself
    return [
        n
        for n, obj in vars(module).items()
        if not n.startswith("_") and getattr(obj, "__module__", None) == module.__name__
    ]


def _own_doc(obj: Any) -> str:
    """The docstring written for ``obj`` itself: not one inherited from a base
    class, nor the signature that dataclasses and NamedTuples make up."""
    if inspect.isclass(obj):
        doc = vars(obj).get("__doc__") or ""
        made_up = dataclasses.is_dataclass(obj) or hasattr(obj, "_fields")
        if made_up and doc.startswith(f"{obj.__name__}("):
            return ""
        return doc.strip()
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    return (getattr(obj, "__doc__", None) or "").strip()


def _is_documentable(obj: Any) -> bool:
    # constants (ints, strings, tuples, type aliases) carry no docstring of their own
    return inspect.isclass(obj) or inspect.isroutine(obj)


def _ours(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "peerpool"


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """Public methods and properties of ``cls``, from ``cls`` or a peerpool base."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not _ours(klass):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(member, (property, staticmethod, classmethod)) or inspect.isroutine(
                member
            ):
                yield f"{klass.__qualname__}.{name}", member


def _undocumented() -> list[str]:
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        if not (module.__doc__ or "").strip():
            missing.append(module_name)
        for name in _public_names(module):
            obj = getattr(module, name)
            if not _is_documentable(obj):
                continue
            where = f"{module_name}.{name}"
            if not _own_doc(obj):
                missing.append(where)
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                missing += [f"{where} ({path})" for path, m in _members(obj) if not _own_doc(m)]
    return sorted(set(missing))


def test_the_walk_sees_the_public_api() -> None:
    # the check below could pass by finding nothing: it must see these
    import peerpool.bitcoin

    paths = {path for path, _ in _members(peerpool.bitcoin.ClientManager)}
    assert "ClientManager.wait_for_n_peers" in paths
    assert "ClientPool.connect_all_with_retry" in paths  # from the peerpool base class
    assert _own_doc(peerpool.bitcoin.BlockChunker)  # a Rust class: its doc comment
    assert len(_public_names(importlib.import_module("peerpool.errors"))) > 50


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_module_has_all_or_only_its_own_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in _public_names(module):
        assert hasattr(module, name), f"{module_name}.__all__ names {name!r}, which is not there"


def test_every_public_name_has_a_docstring() -> None:
    missing = _undocumented()
    assert not missing, f"{len(missing)} public names without a docstring:\n" + "\n".join(missing)
