"""The artefact secrets scan: no secret a test uses may land in a file the test run leaves behind.

Tests declare their secrets through the ``secret_values`` fixture, and every value
registered with ``metaexpert.observability.masking`` during a test is collected too. When
the session ends, every file under pytest's basetemp and the ``logs/`` and ``output/``
folders written during the session is scanned for those values; one hit fails the session.
The scan reads raw bytes with one compiled pattern, so it stays cheap.

Under pytest-xdist the tests run in worker processes: each worker hands its secrets and
its basetemp to the controller (``workeroutput``), and the controller scans once, after
every worker is down, so one scan sees every worker's files and every worker's secrets.
Without that hand-over the controller would scan with no secrets at all and pass anything.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from metaexpert.observability import masking

#: Shorter values would match ordinary text by accident; real credentials are longer.
MINIMUM_SCANNED_LENGTH = 8
MAXIMUM_FILE_BYTES = 50 * 1024 * 1024
_SECRETS_KEY = "metaexpert_secrets"
_BASETEMP_KEY = "metaexpert_basetemp"

_secrets: set[str] = set()
_basetemps: set[Path] = set()
_state: dict[str, object] = {"started": time.time()}


@pytest.fixture
def secret_values() -> set[str]:
    """Add every secret string the test uses; the end-of-session scan looks for them."""
    return _secrets


@pytest.fixture(scope="session", autouse=True)
def _remember_basetemp(tmp_path_factory: pytest.TempPathFactory) -> None:
    _basetemps.add(tmp_path_factory.getbasetemp())


def _collect_registered() -> None:
    with masking._lock:  # the registry's own lock; reading it is all the scan needs
        _secrets.update(masking._secrets)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item):
    _collect_registered()  # before fixtures clear the registry
    yield


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist controller: take over what a finished worker collected."""
    output = getattr(node, "workeroutput", None) or {}
    _secrets.update(output.get(_SECRETS_KEY, ()))
    _basetemps.update(Path(folder) for folder in output.get(_BASETEMP_KEY, ()))


def _candidate_files(root: Path) -> list[Path]:
    started = float(_state["started"])  # type: ignore[arg-type]
    files = []
    for basetemp in sorted(_basetemps):
        if basetemp.is_dir():
            files.extend(
                path for path in basetemp.rglob("*") if path.is_file() and not path.is_symlink()
            )
    for folder in ("logs", "output"):
        directory = root / folder
        if directory.is_dir():
            files.extend(
                path
                for path in directory.rglob("*")
                if path.is_file() and not path.is_symlink() and path.stat().st_mtime >= started
            )
    return files


def scan_for_secrets(files: list[Path], secrets: set[str]) -> list[tuple[Path, str]]:
    """(file, masked secret) for every file holding a secret in clear."""
    values = sorted(
        {value for value in secrets if len(value) >= MINIMUM_SCANNED_LENGTH}, key=len, reverse=True
    )
    if not values:
        return []
    pattern = re.compile(b"|".join(re.escape(value.encode()) for value in values))
    hits = []
    for path in files:
        try:
            with path.open("rb") as handle:
                data = handle.read(MAXIMUM_FILE_BYTES)
        except OSError:
            continue
        match = pattern.search(data)
        if match is not None:
            found = match.group().decode(errors="replace")
            hits.append((path, f"{found[:3]}***({len(found)} chars)"))
    return hits


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _collect_registered()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller scans
        workeroutput[_SECRETS_KEY] = sorted(_secrets)
        workeroutput[_BASETEMP_KEY] = [str(folder) for folder in _basetemps]
        return
    files = _candidate_files(Path(session.config.rootpath))
    hits = scan_for_secrets(files, _secrets)
    _state["report"] = [
        f"{len(files)} files scanned for {len(_secrets)} secret values, {len(hits)} hits"
    ]
    _state["report"] += [f"secret {masked} found in {path}" for path, masked in hits]  # type: ignore[operator]
    _state["hits"] = bool(hits)
    if hits:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    lines = _state.get("report")
    if lines:
        terminalreporter.write_sep("-", "artefact secrets scan", red=bool(_state.get("hits")))
        for line in lines:  # type: ignore[union-attr]
            terminalreporter.write_line(line)
