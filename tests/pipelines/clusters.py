"""Loopback clusters for the optimize flow's ``task_runner="dask"`` and ``"ray"`` test and bench.

``dask_cluster()``: a ``dask.distributed`` LocalCluster of 2 worker processes on 127.0.0.1.

``ray_head()``: a one-node Ray cluster.

``ray start --head --block`` runs as a child process group on free 127.0.0.1 ports and is
stopped with it (``ray stop`` would stop every Ray instance of this user on the machine).
On Linux Ray advertises the machine's outward address and binds its servers to all
interfaces; ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps the head and the driver (the flow
in this process) on the loopback address, so no traffic leaves 127.0.0.1. Measured on the
2-core machine: the head is ready in 8 s (20 s with both cores busy), the six passes take
about 4 s.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 180.0  # a failure bound, not a speed target
_PORT_OPTIONS = (
    "--port",
    "--ray-client-server-port",
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def dask_cluster() -> Any:
    """A LocalCluster of 2 single-thread worker processes on 127.0.0.1 (a context manager)."""
    import distributed

    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
        processes=True,
    )


@dataclass(frozen=True)
class RayHead:
    address: str
    session_dir: Path

    def completed_runs_by_pid(self, task_name: str) -> dict[int, int]:
        """Prefect task runs of ``task_name`` that completed, per cluster worker process.

        Each worker's ``logs/worker-<id>-<job>-<pid>.err`` holds a ``:task_name:NAME`` line per
        Ray task, followed by that task's Prefect log lines.
        """
        counts: dict[int, int] = {}
        for log in (self.session_dir / "logs").glob("worker-*.err"):
            current = None
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith(":task_name:"):
                    current = line.removeprefix(":task_name:")
                elif current == task_name and "Finished in state Completed()" in line:
                    pid = int(log.stem.rsplit("-", 1)[1])
                    counts[pid] = counts.get(pid, 0) + 1
        return counts


def _ready(address: str, env: dict[str, str], ray: str) -> bool:
    try:
        probe = subprocess.run(
            [ray, "status", "--address", address],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0


@contextmanager
def ray_head() -> Iterator[RayHead]:
    """Start the head, yield its address, stop it; the driver settings hold while it runs."""
    ray = str(Path(sys.executable).with_name("ray"))
    if not Path(ray).is_file():
        raise RuntimeError(f"the ray command is not installed next to {sys.executable}")
    loopback = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    previous = {name: os.environ.get(name) for name in loopback}
    os.environ.update(loopback)  # the driver (this process) joins on loopback too
    env = dict(os.environ)
    ports = _free_ports(len(_PORT_OPTIONS))
    # short root: Ray's unix sockets live below it and their paths are limited to 107 bytes
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    command = [
        ray,
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--object-store-memory={200 * 1024 * 1024}",
        f"--temp-dir={temp_dir}",
    ]
    command += [f"{option}={port}" for option, port in zip(_PORT_OPTIONS, ports, strict=True)]
    log_path = temp_dir / "head.log"
    log = log_path.open("w")
    head = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    address = f"127.0.0.1:{ports[0]}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _ready(address, env, ray):
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head did not start: {log_path.read_text()[-2000:]}")
            time.sleep(1)
        yield RayHead(address=address, session_dir=temp_dir / "session_latest")
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGTERM)
            try:
                head.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(head.pid, signal.SIGKILL)
                head.wait()
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
