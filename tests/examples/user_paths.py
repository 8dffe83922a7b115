"""Running documented commands the way a user does: a shell, a working folder, the output read back.

A command runs through ``bash -c`` exactly as the documentation spells it, in a working
folder that holds a link to the project's ``examples/`` (so ``python examples/x.py`` works
as written) and receives the run's ``output/`` and ``logs/``. Its outcome is what a user
would look at: the exit code, error lines and tracebacks in the output, and the trades:
the closed trades of every ``result.json`` the command wrote, the fills a paper run reports
(``... N orders, M fills ...``) or the trades a walk-forward example prints.
"""

from __future__ import annotations

import ast
import fcntl
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tests.pure_build import PROJECT_ROOT

EXAMPLES_DIR = PROJECT_ROOT / "examples"
README = PROJECT_ROOT / "README.md"

#: A log record at ERROR or CRITICAL (console or file format), or a traceback.
_ERROR_LINE = re.compile(
    r"^\s*(ERROR|CRITICAL)\b|\b(ERROR|CRITICAL)\s+\d{4}-\d\d-\d\d|Traceback \(most recent call last\)"
)
_FILLS = re.compile(r"\b(\d+) orders, (\d+) fills\b")
_PRINTED_TRADES = re.compile(r"^out-of-sample trades: (\d+)", re.MULTILINE)
#: Commands whose purpose is to trade: their outcome must show trades.
TRADING_VERBS = ("backtest", "demo", "run", "optimize")
#: Seconds one documented command may take before the test gives up on it (not a speed
#: target: a hung command must not hang CI).
COMMAND_TIMEOUT = 600


@dataclass
class Outcome:
    """What a user sees after one command."""

    command: str
    returncode: int
    output: str
    results: list[dict[str, Any]] = field(default_factory=list)

    def error_lines(self) -> list[str]:
        return [line for line in self.output.splitlines() if _ERROR_LINE.search(line)]

    def trades(self) -> int | None:
        """Trades the command reports having made; None when it reports none at all."""
        if self.results:
            return sum(len(result.get("closed_trades", [])) for result in self.results)
        fills = _FILLS.findall(self.output)
        if fills:
            return sum(int(filled) for _orders, filled in fills)
        printed = _PRINTED_TRADES.findall(self.output)
        if printed:
            return sum(int(count) for count in printed)
        return None

    def trade_record(self) -> Any:
        """What must be equal between the compiled and the pure build: every closed trade,
        or the printed per-window lines of a walk-forward."""
        if self.results:
            return [result["closed_trades"] for result in self.results]
        return [
            line
            for line in self.output.splitlines()
            if line.startswith(("window", "out-of-sample trades", "stitched"))
        ]

    def describe(self) -> str:
        tail = "\n".join(self.output.splitlines()[-40:])
        return f"$ {self.command}\nexit code {self.returncode}\n... last lines:\n{tail}"


def working_folder(path: Path) -> Path:
    """A folder to run commands in, with ``examples/`` reachable as in the project root."""
    path.mkdir(parents=True, exist_ok=True)
    link = path / "examples"
    if not link.exists():
        link.symlink_to(EXAMPLES_DIR, target_is_directory=True)
    return path


def _written_results(cwd: Path, since: float) -> list[dict[str, Any]]:
    found = []
    for path in (
        sorted((cwd / "output").glob("**/result.json")) if (cwd / "output").is_dir() else []
    ):
        if path.stat().st_mtime >= since:
            found.append(json.loads(path.read_text(encoding="utf-8")))
    return found


def run_command(
    command: str, cwd: Path, env: dict[str, str], timeout: float = COMMAND_TIMEOUT
) -> Outcome:
    """Run ``command`` through bash in ``cwd``, as typed at a prompt."""
    started = time.time() - 1.0  # file times have a coarse resolution on some file systems
    completed = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = completed.stdout + completed.stderr
    return Outcome(command, completed.returncode, output, _written_results(cwd, started))


class Background:
    """A documented ``command &``: started, waited for until it listens, stopped at the end."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str]) -> None:
        self.command = command
        text = command.rstrip().removesuffix("&").strip()
        self.port = _option_value(text, "--port")
        self._port_lock = _hold_documented_port(self.port) if self.port is not None else None
        self.log = cwd / f"background-{abs(hash(command))}.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {text}"],
            cwd=cwd,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until the port accepts connections (the process printing its address would do too)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"`{self.command}` ended early:\n{self.output()}")
            if self.port is not None:
                try:
                    with socket.create_connection(("127.0.0.1", int(self.port)), timeout=1.0):
                        return
                except OSError:
                    pass
            elif "listening" in self.output():
                return
            time.sleep(0.2)
        raise AssertionError(
            f"`{self.command}` did not become ready in {timeout:.0f} s:\n{self.output()}"
        )

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(
                self.process.pid, signal.SIGTERM
            )  # the session this process leads, nothing else
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
        self._log_file.close()
        if self._port_lock is not None:
            self._port_lock.close()  # closing the file releases the lock


PORT_WAIT_S = 600.0  # a failure bound: another suite's README block holds the port meanwhile


def _hold_documented_port(port: str) -> TextIO:
    """The README's commands name a fixed port (``--port 8765``); two test runs on one machine
    would start two servers on it, and the second run's client would talk to the first's.
    A lock file per port makes them take turns; a port held by anything else must come free."""
    lock = Path(tempfile.gettempdir()) / f"metaexpert-readme-port-{port}.lock"
    handle = lock.open("w")
    deadline = time.monotonic() + PORT_WAIT_S
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise AssertionError(
                    f"port {port}: another test run held it for {PORT_WAIT_S:.0f} s"
                ) from None
            time.sleep(0.5)
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
            try:
                probe.bind(("127.0.0.1", int(port)))
                return handle
            except OSError:
                time.sleep(0.5)
    handle.close()
    raise AssertionError(f"port {port} that the README names is taken by another process")


def _option_value(command: str, option: str) -> str | None:
    words = shlex.split(command, comments=True)
    for index, word in enumerate(words):
        if word == option and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(option + "="):
            return word.split("=", 1)[1]
    return None


# ----------------------------------------------------------------------------- examples
def example_files() -> list[Path]:
    """Every example, whoever added it."""
    return sorted(EXAMPLES_DIR.glob("*.py"))


def example_commands(path: Path) -> list[str]:
    """The commands the example's docstring documents (lines starting ``python`` or
    ``metaexpert`` that name the file), and ``python examples/<file>`` (its ``__main__``)."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    relative = f"examples/{path.name}"
    commands = []
    for line in docstring.splitlines():
        text = line.split("#", 1)[0].strip()
        if (
            text.startswith(("python ", "metaexpert "))
            and relative in text
            and text not in commands
        ):
            commands.append(text)
    default = f"python {relative}"
    if default not in commands:
        commands.insert(0, default)
    return commands


def is_trading_command(command: str) -> bool:
    """A backtest, demo, paper/live run, optimisation or an example script: it must trade."""
    words = shlex.split(command, comments=True)
    if not words:
        return False
    if words[0] == "python":
        return len(words) > 1 and words[1].endswith(".py")
    if words[0] == "make":
        return words[1:2] == ["demo"]
    return words[0] == "metaexpert" and len(words) > 1 and words[1] in TRADING_VERBS


# ----------------------------------------------------------------------------- README
@dataclass
class Block:
    language: str
    text: str
    line: int


def readme_blocks(text: str | None = None) -> list[Block]:
    """The fenced code blocks of the README, in order."""
    source = README.read_text(encoding="utf-8") if text is None else text
    blocks = []
    language: str | None = None
    lines: list[str] = []
    start = 0
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("```"):
            if language is None:
                language = stripped[3:].strip() or "text"
                lines = []
                start = number
            else:
                blocks.append(Block(language, "\n".join(lines), start))
                language = None
            continue
        if language is not None:
            lines.append(line)
    return blocks


def shell_commands(block: Block) -> list[str]:
    """The command lines of a ``bash`` block (comments and blank lines left out)."""
    commands = []
    for line in block.text.splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            commands.append(text)
    return commands


def command_words(command: str) -> list[str]:
    """The words before the comment, ``&`` removed."""
    return [word for word in shlex.split(command, comments=True) if word != "&"]
