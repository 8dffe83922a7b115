"""The pure-Python build of the package, for tests that compare it with the build under test.

``make`` compiles the modules of ``metaexpert/_compiled.py`` with mypyc in place, and Python
imports an extension before the ``.py`` beside it. A copy of the package's sources without
the extension modules is what ``METAEXPERT_COMPILE=0 pip install`` installs: the same code,
interpreted. Subprocesses run it with ``PYTHONPATH`` pointing at the copy (it comes before
the editable install's finder on ``sys.path``); copying 4 MB of sources takes well under a
second, a second mypyc-free install would take a minute.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import sys
from pathlib import Path

#: The project root (the folder holding ``metaexpert/`` and ``tests/``).
PROJECT_ROOT = Path(__file__).resolve().parent.parent

_EXTENSION_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def _ignore(folder: str, names: list[str]) -> set[str]:
    return {name for name in names if name == "__pycache__" or name.endswith(_EXTENSION_SUFFIXES)}


def pure_python_tree(target: Path) -> Path:
    """Copy ``metaexpert/`` without extension modules into ``target/metaexpert``; returns ``target``."""
    destination = target / "metaexpert"
    if not destination.is_dir():
        shutil.copytree(PROJECT_ROOT / "metaexpert", destination, ignore=_ignore)
    return target


def pure_python_env(target: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a subprocess that imports the pure build (copied into ``target``) and
    the project's ``tests`` package; the project's shared data stays where it is."""
    from metaexpert.expert import default_data_dir

    root = pure_python_tree(target)
    env = dict(base if base is not None else os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(PROJECT_ROOT)])
    env["METAEXPERT_COMPILE"] = "0"
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    data = default_data_dir()
    if data is not None and "METAEXPERT_DATA_DIR" not in env:
        # The copy lives outside the project, so it would not find ``../shared/data``.
        env["METAEXPERT_DATA_DIR"] = str(data)
    return env


def project_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a subprocess that imports the build under test (this project tree,
    with its extension modules when ``make build`` made them)."""
    env = dict(base if base is not None else os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    return env
