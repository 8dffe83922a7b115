"""Each docker-compose service's own command, started on this machine without Docker, answers
its own health check (the compose file's ``healthcheck`` with the local port).

The commands read their addresses from the service environment (``$$NAME`` in the file); the
test runs the very same command line with the environment pointed at loopback: PostgreSQL at
127.0.0.1:5432 (the machine's), free ports, the recorded data, a temporary output folder.
Not run here: the images themselves (no Docker engine), the postgres service's own container
(the machine's PostgreSQL stands in, checked with pg_isready as its healthcheck does).
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.network]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
BIN = Path(sys.executable).parent
CONTAINER_PORTS = {"prefect-server": 4200, "worker": 8080, "report-server": 8088, "sandbox": 8765}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _prefect_database() -> str:
    import psycopg

    with psycopg.connect(
        "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
    ) as connection:
        connection.execute("DROP DATABASE IF EXISTS compose_prefect WITH (FORCE)")
        connection.execute("CREATE DATABASE compose_prefect")
    return "postgresql+asyncpg://postgres@127.0.0.1:5432/compose_prefect"


def _healthy(test: list[str], container_port: int, local_port: int, env: dict[str, str]) -> bool:
    assert test[0] == "CMD"
    argv = [sys.executable if part == "python" else part for part in test[1:]]
    argv = [part.replace(f":{container_port}/", f":{local_port}/") for part in argv]
    return (
        subprocess.run(argv, env=env, capture_output=True, timeout=30, check=False).returncode == 0
    )


def _wait_healthy(name, process, service, local_port, env, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}: {process.stdout.read()[-3000:]}")
        if _healthy(service["healthcheck"]["test"], CONTAINER_PORTS[name], local_port, env):
            return
        time.sleep(1)
    pytest.fail(f"{name} not healthy within {timeout_s} s")


def test_compose_services_with_local_environment_start_and_pass_their_health_checks(
    shared_data, tmp_path
):
    if (
        shutil.which("pg_isready") is None
        or subprocess.run(["pg_isready", "-h", "127.0.0.1"], check=False).returncode != 0
    ):
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert {"postgres", "prefect-server", "worker", "report-server", "sandbox", "stream"} <= set(
        services
    )
    ports = {name: _free_port() for name in CONTAINER_PORTS}
    local = {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path / "home"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "SERVER_HOST": "127.0.0.1",
        "SERVER_PORT": str(ports["prefect-server"]),
        "PREFECT_API_DATABASE_CONNECTION_URL": _prefect_database(),
        "PREFECT_API_URL": f"http://127.0.0.1:{ports['prefect-server']}/api",
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{ports['prefect-server']}/api",
        "PREFECT_UI_URL": f"http://127.0.0.1:{ports['prefect-server']}",
        "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
        "PREFECT_WORKER_WEBSERVER_PORT": str(ports["worker"]),
        "METAEXPERT_HOME": str(ROOT),
        "METAEXPERT_DATA_DIR": str(shared_data),
        "METAEXPERT_STORAGE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "METAEXPERT_REPORT_ROOT": str(tmp_path / "output"),
        "METAEXPERT_REPORT_URL": "",
        "METAEXPERT_ALERT_URLS": "",
        "METAEXPERT_ALERT_WEBHOOK": "",
        "REPORT_HOST": "127.0.0.1",
        "REPORT_PORT": str(ports["report-server"]),
        "SANDBOX_HOST": "127.0.0.1",
        "SANDBOX_PORT": str(ports["sandbox"]),
        "SANDBOX_URL": f"http://127.0.0.1:{ports['sandbox']}",
    }
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name in ("prefect-server", "worker", "report-server", "sandbox", "stream"):
            service = services[name]
            env = {key: str(value) for key, value in (service.get("environment") or {}).items()}
            env.update(local)
            argv = shlex.split(service["command"].replace("$$", "$"))
            processes[name] = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            if name in CONTAINER_PORTS:
                _wait_healthy(name, processes[name], service, ports[name], env)
        time.sleep(8)  # the streaming worker has no health endpoint: it must still be running
        stream = processes["stream"]
        assert stream.poll() is None, stream.stdout.read()[-3000:]
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
