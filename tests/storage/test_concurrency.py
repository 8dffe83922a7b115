from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from metaexpert.storage import StateStore

REPOSITORY = Path(__file__).resolve().parents[2]
PROCESSES = 4
INSERTS_PER_PROCESS = 100


@pytest.mark.slow
def test_four_processes_with_concurrent_inserts_lose_no_rows(store: StateStore, expert_id: int, database_url: str) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.storage.writer_process", "insert", database_url, str(expert_id),
             str(INSERTS_PER_PROCESS), f"p{number}"],
            cwd=REPOSITORY,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(PROCESSES)
    ]
    for child in children:
        _, errors = child.communicate(timeout=90)
        assert child.returncode == 0, errors
    events = store.audit.list(expert_id)
    assert len(events) == PROCESSES * INSERTS_PER_PROCESS
    counts = Counter((event.payload["tag"], event.payload["i"]) for event in events)
    assert set(counts.values()) == {1}
    assert {tag for tag, _ in counts} == {f"p{number}" for number in range(PROCESSES)}
