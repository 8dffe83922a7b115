"""Every example in ``examples/`` and every command of the README, run as a user runs them.

Each documented command runs in a subprocess through bash, exactly as written, against the
build under test (``make test``: the mypyc build), and must exit 0 without an ERROR line or
a traceback; a command that trades (a backtest, the demo, a paper run, an example script)
must report trades. Each example then runs once more on the pure-Python sources (what
``METAEXPERT_COMPILE=0`` installs, see ``tests/pure_build.py``) and must make the very same
trades. Examples are found by glob, so a new example is covered the day it is added.

Bounded in time: the examples replay one year of 1h candles (a few seconds each); the
walk-forward example's quick variant is the one compared with the pure build.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from metaexpert._compiled import COMPILED_MODULES
from metaexpert.expert import default_data_dir
from tests.examples.user_paths import (
    Background,
    Outcome,
    command_words,
    example_commands,
    example_files,
    is_trading_command,
    readme_blocks,
    run_command,
    shell_commands,
    working_folder,
)
from tests.pure_build import PROJECT_ROOT, project_env, pure_python_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        default_data_dir() is None, reason="the recorded candles (../shared/data) are not here"
    ),
]

_EXAMPLE_CASES = [
    (path.name, command) for path in example_files() for command in example_commands(path)
]
_as_built: dict[str, Outcome] = {}


@pytest.fixture(scope="module")
def as_built_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return working_folder(tmp_path_factory.mktemp("as-built"))


def as_built(command: str, folder: Path) -> Outcome:
    """The command's outcome on the build under test, run once per session."""
    if command not in _as_built:
        cwd = working_folder(folder / f"run-{len(_as_built)}")
        _as_built[command] = run_command(command, cwd, project_env())
    return _as_built[command]


def assert_user_sees_success(outcome: Outcome) -> None:
    assert outcome.returncode == 0, outcome.describe()
    assert not outcome.error_lines(), (
        "\n".join(outcome.error_lines()[:10]) + "\n" + outcome.describe()
    )
    if is_trading_command(outcome.command):
        trades = outcome.trades()
        assert trades is not None, f"the command reports no trades at all\n{outcome.describe()}"
        assert trades > 0, f"0 trades\n{outcome.describe()}"


def test_examples_with_the_build_under_test_are_compiled_when_required():
    """``make test`` runs the examples on the mypyc build; a subprocess imports it too."""
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from metaexpert._compiled import compiled_modules; print(len(compiled_modules()))",
        ],
        env=project_env(),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    compiled = int(completed.stdout.strip())
    if os.environ.get("METAEXPERT_REQUIRE_COMPILED") == "1":
        assert compiled == len(COMPILED_MODULES)
    elif compiled == 0:
        pytest.skip(
            "this tree has no compiled modules (run `make build`); the examples ran interpreted"
        )


@pytest.mark.parametrize(
    ("example", "command"), _EXAMPLE_CASES, ids=[c for _e, c in _EXAMPLE_CASES]
)
def test_example_with_each_documented_command_trades_without_errors(
    example, command, as_built_folder
):
    assert_user_sees_success(as_built(command, as_built_folder))


@pytest.mark.parametrize("example", [path.name for path in example_files()])
def test_example_with_pure_python_build_makes_identical_trades(example, as_built_folder, tmp_path):
    # The quickest documented variant: the docstrings list the full run first.
    command = example_commands(Path(PROJECT_ROOT / "examples" / example))[-1]
    compiled = as_built(command, as_built_folder)
    assert_user_sees_success(compiled)
    pure = run_command(
        command, working_folder(tmp_path / "run"), pure_python_env(tmp_path / "pure")
    )
    assert_user_sees_success(pure)
    assert pure.trade_record() == compiled.trade_record()


def test_examples_with_a_docstring_each_document_how_to_run_them():
    for path in example_files():
        commands = example_commands(path)
        assert commands[0] == f"python examples/{path.name}"
        source = path.read_text(encoding="utf-8")
        assert 'if __name__ == "__main__":' in source, (
            f"{path.name} cannot be run as `python {path}`"
        )


# ----------------------------------------------------------------------------- README
def _make_target_is_current(target: str) -> bool:
    completed = subprocess.run(
        ["make", "-q", target], cwd=PROJECT_ROOT, capture_output=True, timeout=60, check=False
    )
    return completed.returncode == 0


def _readme_shell_blocks() -> list:
    return [block for block in readme_blocks() if block.language in ("bash", "sh", "shell")]


def _venv_link(folder: Path) -> None:
    """``. .venv/bin/activate`` as in the project root: the project's venv, else the one running
    the tests (the shared development venv)."""
    link = folder / ".venv"
    if link.exists():
        return
    venv = PROJECT_ROOT / ".venv"
    link.symlink_to(venv if venv.is_dir() else Path(sys.prefix), target_is_directory=True)


def run_readme_block(block, folder: Path) -> list[Outcome]:
    """Run the block's commands in order in ``folder``; ``X &`` lines run in the background
    until the block ends; ``. FILE`` lines apply to the commands after them."""
    env = project_env()
    _venv_link(folder)
    prefix = ""
    background: list[Background] = []
    outcomes = []
    try:
        for command in shell_commands(block):
            words = command_words(command)
            if words[:1] in (["."], ["source"]):
                prefix += command.split("#", 1)[0].strip() + " && "
                continue
            if words[:1] == ["make"]:
                outcomes.extend(_run_make(words, command, env))
                continue
            if command.split("#", 1)[0].rstrip().endswith("&"):
                process = Background(prefix + command.split("#", 1)[0], folder, env)
                background.append(process)
                process.wait_ready()
                continue
            outcome = run_command(prefix + command, folder, env)
            outcome.command = command
            outcomes.append(outcome)
    finally:
        for process in background:
            process.stop()
    for process in background:
        output = process.output()
        assert "Traceback" not in output, f"`{process.command}`:\n{output}"
    return outcomes


def _run_make(words: list[str], command: str, env: dict[str, str]) -> list[Outcome]:
    target = words[1] if len(words) > 1 else ""
    if target == "test":
        return []  # the command that runs this very suite
    if not _make_target_is_current("build"):
        pytest.skip(
            f"`{command}` would install and compile first (no current `make build` in this tree)"
        )
    outcome = run_command(command.split("#", 1)[0], PROJECT_ROOT, env)
    outcome.command = command
    return [outcome]


@pytest.mark.parametrize(
    "index",
    range(len(_readme_shell_blocks())),
    ids=[f"README-line-{block.line}" for block in _readme_shell_blocks()],
)
def test_readme_shell_block_with_commands_as_written_succeeds(index, tmp_path):
    block = _readme_shell_blocks()[index]
    outcomes = run_readme_block(block, working_folder(tmp_path))
    for outcome in outcomes:
        assert_user_sees_success(outcome)


def test_readme_python_expert_with_its_own_backtest_trades(tmp_path):
    """The expert shown in the README, saved as a file and run with ``python``."""
    blocks = [
        block
        for block in readme_blocks()
        if block.language == "python" and "MetaExpert(" in block.text
    ]
    assert blocks, "the README shows no expert"
    for number, block in enumerate(blocks):
        folder = working_folder(tmp_path / f"expert-{number}")
        (folder / "readme_expert.py").write_text(block.text + "\n", encoding="utf-8")
        assert_user_sees_success(run_command("python readme_expert.py", folder, project_env()))


def test_demo_with_the_recorded_candles_prints_no_warning(as_built_folder):
    """The first screen a new user sees: metrics and the report's address, no warnings of
    ours (the demo expert once filled it with weekend-rejection warnings)."""
    outcome = as_built("metaexpert demo", as_built_folder)
    assert_user_sees_success(outcome)
    warnings = [
        line for line in outcome.output.splitlines() if re.search(r"\bWARNING\b|Warning:", line)
    ]
    assert not warnings, "\n".join(warnings[:10])
    assert "open the report:" in outcome.output
