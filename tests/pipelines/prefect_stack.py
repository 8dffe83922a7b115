"""A real Prefect stack on 127.0.0.1 for tests and benchmarks: ``prefect server start`` (with its
UI and its scheduler, which the test harness leaves out) and ``prefect worker start`` processes.

Each process runs in its own session and is stopped by its process group, so what it started
(the worker's flow-run processes) stops with it. The server gets its own PREFECT_HOME under
``folder`` and a sqlite database there, or the database it is given (PostgreSQL through
asyncpg, as Prefect recommends where writers compete: one sqlite file serialises the API, the
scheduler and the event services). Every wait is a failure bound, not a speed check.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PREFECT = Path(sys.executable).with_name("prefect")
HEALTHY_TIMEOUT_S = 150.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stack_env(folder: Path, port: int, database_url: str | None = None) -> dict[str, str]:
    """This environment without its Prefect settings, pointed at a server on ``port``."""
    ui_url = f"http://127.0.0.1:{port}"
    api_url = f"{ui_url}/api"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PREFECT_") and key.lower() not in {"http_proxy", "https_proxy"}
    }
    env.update(
        PREFECT_HOME=str(folder / "prefect-home"),
        PREFECT_API_URL=api_url,
        PREFECT_UI_API_URL=api_url,
        PREFECT_UI_URL=ui_url,
        PREFECT_UI_ENABLED="true",
        PREFECT_API_DATABASE_CONNECTION_URL=(
            database_url or f"sqlite+aiosqlite:///{folder / 'prefect.db'}"
        ),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        METAEXPERT_HOME=str(ROOT),
        PYTHONPATH=str(ROOT),
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started with ``start_new_session`` and what it started (by its group)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
        except ProcessLookupError:
            pass


@contextmanager
def started(command: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> Iterator:
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            stop(process)


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


def wait_healthy(api_url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + HEALTHY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"prefect server exited:\n{tail(log)}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=5) as answer:
                if json.load(answer) is True:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(
        f"prefect server not healthy within {HEALTHY_TIMEOUT_S:.0f} s:\n{tail(log)}"
    )


def prefect(*arguments: str, env: dict[str, str]) -> None:
    """Run a ``prefect`` command from the repository; a failure shows its output."""
    completed = subprocess.run(
        [str(PREFECT), *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if completed.returncode != 0:
        raise AssertionError(completed.stdout[-3000:] + completed.stderr[-3000:])


@contextmanager
def prefect_server(folder: Path, database_url: str | None = None) -> Iterator[dict[str, str]]:
    """A healthy ``prefect server start`` on a free port (its log in ``folder/server.log``);
    yields the environment that reaches it."""
    port = free_port()
    env = stack_env(folder, port, database_url)
    log = folder / "server.log"
    command = [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with started(command, env=env, cwd=folder, log=log) as server:
        wait_healthy(env["PREFECT_API_URL"], server, log)
        yield env


def prefect_worker(pool: str, *, env: dict[str, str], folder: Path, log: Path):
    """A ``prefect worker start`` on ``pool`` (a context manager yielding the process)."""
    return started([str(PREFECT), "worker", "start", "--pool", pool], env=env, cwd=folder, log=log)
