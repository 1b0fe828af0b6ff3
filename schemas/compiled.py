"""Which build of the reducer runs: pure Python (the default) or the mypyc-compiled one (issue 16).

``python -m tools.compile build`` compiles :data:`MODULES` with mypyc *in place*: one ``.so`` next to each
source plus the shared library ``ra_native__mypyc*.so`` at the repository root, and a manifest
(``ra_native.json``) holding a SHA-256 of the sources it was built from. None of it is committed; without
a build everything runs as pure Python and nothing else changes.

The switch is one environment variable, read once when :mod:`schemas` (or :mod:`reducer`) is first imported:

``RA_COMPILED`` unset, empty or ``auto``
    the compiled modules when a build is present *and* fresh (the manifest's hash matches the sources);
    pure Python otherwise. A stale build (a source edited after the build) is never used, with a
    :class:`RuntimeWarning`: mypyc modules call each other directly, so a build must be used whole or not
    at all.
``RA_COMPILED=0``
    pure Python, even when a fresh build is present (the ``.py`` files are loaded, the ``.so`` ignored).
``RA_COMPILED=1``
    the compiled modules, or an :class:`ImportError` when no fresh build is present (a benchmark that
    asks for the compiled build never measures the pure one by mistake).

:func:`variant` says which one this process runs (``"compiled"`` or ``"pure"``), from the modules
actually loaded. This module is never compiled itself; importing it applies the switch (:func:`install`).
It is imported by every process that imports :mod:`schemas`, so it imports only what the common case needs
(no build present: one ``stat`` of the manifest and a few globs); ``hashlib`` and ``json`` are imported when
a build is there to check.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Final

ENV: Final = "RA_COMPILED"
VARIANT_SETTINGS: Final = {"pure": "0", "compiled": "1"}
"""The value of :data:`ENV` that makes a process run each build, by the name :func:`variant` reports."""
GROUP: Final = "ra_native"
"""mypyc's group name: the shared library is ``ra_native__mypyc<EXT_SUFFIX>`` at the repository root."""
PACKAGES: Final = ("reducer", "schemas")
MODULES: Final = (
    "reducer.batching",
    "reducer.boundary",
    "reducer.clock",
    "reducer.context",
    "reducer.core",
    "reducer.custom",
    "reducer.expiry",
    "reducer.items",
    "reducer.limits",
    "reducer.reviews",
    "reducer.snapshot",
    "reducer.threads",
    "reducer.turns",
    "schemas.bounds",
    "schemas.codec",
    "schemas.http",
    "schemas.keys",
)
"""The modules ``tools.compile`` compiles: the reducer and the schemas helpers it calls. The packages'
``__init__``, this module and the schemas modules that define msgspec Structs stay pure Python: mypyc compiles a
Struct subclass as a class of its own and then refuses ``msgspec.field(...)`` defaults at import (``TypeError:
schemas.protocol.PermissionProfile object expected; got msgspec._core.Field``), and a Struct used from compiled
code is an ordinary Python class anyway (``reducer.limits`` defines one without ``msgspec.field`` and works)."""

ROOT: Final = Path(__file__).resolve().parent.parent
MANIFEST: Final = ROOT / f"{GROUP}.json"


def source_path(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def sources_digest(modules: Sequence[str] = MODULES) -> str:
    """SHA-256 over the compiled modules' names and sources: what a build is valid for."""
    import hashlib  # only where a build exists (see the module docstring)

    hasher = hashlib.sha256()
    for module in modules:
        hasher.update(module.encode() + b"\0" + source_path(module).read_bytes() + b"\0")
    return hasher.hexdigest()


def built_files() -> list[Path]:
    """Every file a build leaves in the tree (extension modules, the shared library, the manifest)."""
    found: list[Path] = []
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        found += ROOT.glob(f"{GROUP}__mypyc{suffix}")
        for package in PACKAGES:
            found += (ROOT / package).glob(f"*{suffix}")
    if MANIFEST.exists():
        found.append(MANIFEST)
    return sorted(set(found))


def build_state() -> str:
    """``"fresh"``, ``"stale"`` (built from other sources, or incomplete) or ``"absent"``."""
    if not MANIFEST.exists():
        return "stale" if built_files() else "absent"
    import json  # only where a build exists (see the module docstring)

    try:
        manifest = json.loads(MANIFEST.read_text())
        if tuple(manifest["modules"]) != MODULES or manifest["sources"] != sources_digest():
            return "stale"
    except (OSError, ValueError, KeyError, TypeError):
        return "stale"
    shared = [ROOT / f"{GROUP}__mypyc{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES]
    if not any(path.exists() for path in shared):
        return "stale"
    expected = {str(source_path(module).with_suffix("")) for module in MODULES}
    for module in MODULES:
        stem = source_path(module).with_suffix("")
        if not any(Path(f"{stem}{suffix}").exists() for suffix in importlib.machinery.EXTENSION_SUFFIXES):
            return "stale"
    for path in built_files():  # an extension module the build did not make (a left-over) is never used
        if path.parent != ROOT and str(path.parent / path.name.split(".", 1)[0]) not in expected:
            return "stale"
    return "fresh"


class _PureFinder:
    """Loads the ``.py`` source of every module of :data:`PACKAGES`, even when a ``.so`` sits next to it.

    A meta path finder by protocol (``find_spec``); not derived from ``importlib.abc.MetaPathFinder``, whose
    import costs about 15 ms of start-up in every process that imports :mod:`schemas`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in PACKAGES or "." not in fullname:
            return None
        source = source_path(fullname)
        return importlib.util.spec_from_file_location(fullname, source) if source.is_file() else None


_FINDER: Final = _PureFinder()


def requested() -> str:
    """The value of ``RA_COMPILED`` as one of ``auto``, ``0``, ``1``."""
    value = os.environ.get(ENV, "").strip().lower()
    if value in ("", "auto"):
        return "auto"
    if value in ("0", "1"):
        return value
    raise ImportError(f"{ENV}={value!r}: expected 0 (pure Python), 1 (compiled, required) or auto")


def install() -> None:
    """Apply the switch (idempotent); runs when this module is first imported, which ``schemas/__init__`` does
    before any compiled module is looked up."""
    if _FINDER in sys.meta_path:
        return
    wanted = requested()
    state = build_state() if wanted != "0" else "ignored"
    if wanted == "1" and state != "fresh":
        raise ImportError(
            f"{ENV}=1 but the compiled build is {state}: run `python -m tools.compile build` (or unset {ENV})"
        )
    if wanted == "0" or state == "stale":
        if state == "stale":
            import warnings  # a rare path

            warnings.warn(
                "the mypyc build of the reducer is stale (sources changed since `python -m tools.compile build`): "
                "running pure Python; rebuild or `python -m tools.compile clean`",
                RuntimeWarning,
                stacklevel=2,
            )
        sys.meta_path.insert(0, _FINDER)


def compiled_loaded() -> list[str]:
    """The modules of :data:`MODULES` loaded in this process from an extension module."""
    return [
        name
        for name in MODULES
        if (module := sys.modules.get(name)) is not None
        and str(getattr(module, "__file__", "")).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    ]


def variant() -> str:
    """``"compiled"`` when this process runs the mypyc build of :data:`MODULES`, else ``"pure"``.

    Imports the modules first, so the answer is about what runs, not about what may be loaded later."""
    for name in MODULES:
        importlib.import_module(name)
    loaded = compiled_loaded()
    if loaded and len(loaded) != len(MODULES):  # cannot happen through install(); say so if it does
        return f"mixed ({len(loaded)}/{len(MODULES)} compiled)"
    return "compiled" if loaded else "pure"


install()
