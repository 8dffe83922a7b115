"""The end-of-session artefact scan finds a planted secret and ignores clean files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pure_build import PROJECT_ROOT
from tests.secret_scan import scan_for_secrets


def test_scan_for_secrets_with_planted_value_reports_file_masked(tmp_path):
    planted = "planted-" + "z" * 24  # deliberately not registered: the session scan must not see it
    leaky, clean, binary = tmp_path / "leaky.log", tmp_path / "clean.log", tmp_path / "data.bin"
    leaky.write_text(f"request failed with key {planted}\n")
    clean.write_text("request failed with key ***\n")
    binary.write_bytes(b"\x00\x01" * 1000)
    hits = scan_for_secrets([leaky, clean, binary], {planted, "short"})
    assert [path for path, _ in hits] == [leaky]
    assert planted not in hits[0][1] and hits[0][1].startswith("pla***")
    leaky.unlink()


def test_scan_for_secrets_with_only_short_values_finds_nothing(tmp_path):
    path = tmp_path / "text.log"
    path.write_text("abc abc abc")
    assert scan_for_secrets([path], {"abc"}) == []


_LEAKING_TEST = """
def test_writes_its_secret_into_a_log(secret_values, tmp_path):
    secret = "inner-secret-" + "q" * 20
    secret_values.add(secret)
    (tmp_path / "run.log").write_text(f"connecting with key {secret}\\n")


def test_writes_nothing(tmp_path):
    (tmp_path / "run.log").write_text("connecting with key ***\\n")
"""


def _scan_session(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """A pytest session of its own with the scan plugin, over one test that leaks a secret."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_leak.py").write_text(_LEAKING_TEST)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.secret_scan"]
        + ["--basetemp", str(tmp_path / "basetemp"), *options, str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.parametrize("options", [(), ("-n", "2")], ids=["one-process", "xdist-workers"])
def test_session_scan_with_secret_written_by_a_test_fails_the_session(tmp_path, options):
    completed = _scan_session(tmp_path, *options)
    output = completed.stdout + completed.stderr
    assert "2 passed" in output, output
    assert "for 1 secret values, 1 hits" in output, output
    assert "inner-secret" not in output  # the report names the file, never the value
    assert completed.returncode == pytest.ExitCode.TESTS_FAILED, output
