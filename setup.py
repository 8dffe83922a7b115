"""Build hook: compile the engine's hot modules with mypyc (see metaexpert/_compiled.py).

Everything else about the package is in pyproject.toml. Set ``METAEXPERT_COMPILE=0`` to
install the pure-Python package (same behaviour, a slower backtest).
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def compiled_extensions() -> list:
    if os.environ.get("METAEXPERT_COMPILE", "1") == "0":
        return []
    from mypyc.build import mypycify

    listing = runpy.run_path(str(ROOT / "metaexpert" / "_compiled.py"))
    modules = listing["COMPILED_MODULES"]
    paths = [str(Path(*module.split(".")).with_suffix(".py")) for module in modules]
    # One shared library inside the package (not a top-level module beside it), so that
    # every process that can import metaexpert finds it, whatever its working directory.
    return mypycify(paths, opt_level="3", group_name=listing["GROUP_NAME"])


setup(ext_modules=compiled_extensions())
