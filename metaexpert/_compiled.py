"""The modules that ``setup.py`` compiles with mypyc, and whether the compiled copies are current.

The replay loop and the order path (order, position, portfolio, broker, engine, sizing
and risk checks) run once per bar and per order, so they are compiled to C extension
modules when the package is installed. The Python sources stay the reference: a build
with ``METAEXPERT_COMPILE=0`` runs the very same code interpreted, slower.

An editable install puts the extension next to its ``.py`` file and Python imports the
extension first, so an edited source is ignored until it is compiled again
(``make build``). ``stale_modules`` finds such modules; the test suite refuses to run
against them. Only the standard library is imported here: ``setup.py`` reads this file
before the package exists.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

#: Compiled together, so calls between them are direct C calls. None of them may define
#: pydantic models, runtime-checkable protocols or classes that tests monkeypatch.
COMPILED_MODULES: tuple[str, ...] = (
    "metaexpert.core.account",
    "metaexpert.core.enums",
    "metaexpert.core.intent",
    "metaexpert.core.market",
    "metaexpert.core.order",
    "metaexpert.core.position",
    "metaexpert.core.round_trip",
    "metaexpert.core.series",
    "metaexpert.engine.engine",
    "metaexpert.engine.intrabar",
    "metaexpert.engine.portfolio",
    "metaexpert.engine.simulated_broker",
    "metaexpert.engine.slippage",
    "metaexpert.risk.manager",
    "metaexpert.risk.sizing",
    "metaexpert.backtest.replay",
)

#: The shared library that holds the compiled code; each module's own extension is only a
#: shim that loads it (and is not rebuilt when just the code changes).
GROUP_NAME = "metaexpert._engine"

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def source_path(module: str) -> Path:
    """The ``.py`` file of a compiled module, relative paths resolved against the project."""
    return _PACKAGE_ROOT.joinpath(*module.split(".")).with_suffix(".py")


def extension_path(module: str) -> Path | None:
    """The extension file that would be imported instead of the source, if one exists."""
    source = source_path(module)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = source.with_name(source.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def compiled_modules() -> list[str]:
    """The modules of ``COMPILED_MODULES`` that are imported from an extension module."""
    found = []
    for module in COMPILED_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            found.append(module)
    return found


def stale_modules() -> list[str]:
    """Compiled modules whose source changed after the compiled code was built."""
    library = extension_path(GROUP_NAME + "__mypyc")
    built = library.stat().st_mtime if library is not None else 0.0
    stale = []
    for module in COMPILED_MODULES:
        extension = extension_path(module)
        if extension is not None and source_path(module).stat().st_mtime > max(
            built, extension.stat().st_mtime
        ):
            stale.append(module)
    return stale
