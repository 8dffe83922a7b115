"""A PostgreSQL server of a test's own, which the test may stop (SIGSTOP) without harming others.

The machine's server at 127.0.0.1:5432 serves every other test, so a test that freezes a
whole server needs its own: ``initdb`` into a fresh folder (owned by the ``postgres`` user,
which the server refuses to run as root without), started with ``pg_ctl`` on a free
loopback port, with ``fsync`` off (nothing here survives the test). About 2 s to create on
this machine. ``frozen()`` stops the postmaster and every backend, exactly what a server
process that hangs looks like to a client: the kernel still acknowledges and answers
keepalives, the server answers nothing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SERVER_USER = "postgres"


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", SERVER_USER, "--", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class PrivateServer:
    def __init__(self, folder: Path, port: int, binaries: Path) -> None:
        self.folder, self.port, self.binaries = folder, port, binaries

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{self.port}/postgres"

    def processes(self) -> list[int]:
        """The postmaster and every process it started."""
        postmaster = int((self.folder / "data" / "postmaster.pid").read_text().split()[0])
        found = [postmaster]
        for stat in glob.glob("/proc/[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    found.append(int(Path(stat).parent.name))
        return found

    def signal_all(self, number: int) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, number)

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process of the server is stopped inside the block, resumed after it."""
        self.signal_all(signal.SIGSTOP)
        try:
            yield
        finally:
            self.signal_all(signal.SIGCONT)


@contextmanager
def private_server() -> Iterator[PrivateServer]:
    """A running server of its own; skipped (saying why) where one cannot be made."""
    binaries = _binaries()
    if binaries is None or shutil.which("runuser") is None or os.geteuid() != 0:
        pytest.skip("a private PostgreSQL needs initdb, runuser and root (to run it as postgres)")
    folder = Path(tempfile.mkdtemp(prefix="metaexpert-pg-"))
    shutil.chown(folder, SERVER_USER)
    data, port = folder / "data", _free_port()
    server = PrivateServer(folder, port, binaries)
    try:
        made = _as_server_user(
            str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", SERVER_USER, "--no-sync"
        )
        if made.returncode != 0:
            pytest.fail(f"initdb failed: {made.stderr[-500:]}")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        started = _as_server_user(
            str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-t", "60", "-l",
            str(folder / "server.log"), "start",
        )  # fmt: skip
        if started.returncode != 0:
            log = (folder / "server.log").read_text(errors="replace")[-500:]
            pytest.fail(f"pg_ctl start failed: {started.stderr[-300:]} {log}")
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            server.signal_all(signal.SIGCONT)
            _as_server_user(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)
