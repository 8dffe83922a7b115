"""Shared fixtures for the CLI tests: a runner and expert files built from fakes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cli.fakes import FakeExpert


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def fake_expert_type(monkeypatch: pytest.MonkeyPatch) -> type:
    """Make the CLI look for ``FakeExpert`` instances instead of the real facade."""
    monkeypatch.setattr("metaexpert.cli.loader.resolve_expert_type", lambda: FakeExpert)
    return FakeExpert


@pytest.fixture
def write_expert_file(tmp_path: Path):
    """Write a small expert file whose body is ``body`` (dedented) and return its path."""

    def write(body: str, name: str = "fake_expert.py") -> Path:
        path = tmp_path / name
        header = "from tests.cli.fakes import FakeExpert\n"
        path.write_text(header + textwrap.dedent(body), encoding="utf-8")
        return path

    return write
