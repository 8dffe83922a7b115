from __future__ import annotations

import multiprocessing
from collections import Counter

import pytest

from metaexpert.storage import StateStore
from tests.storage.conftest import plain_url
from tests.storage.writer_process import insert_events

PROCESSES = 4
INSERTS_PER_PROCESS = 100


@pytest.mark.slow
def test_four_processes_with_concurrent_inserts_lose_no_rows(
    store: StateStore, expert_id: int
) -> None:
    context = multiprocessing.get_context("fork")
    url = plain_url(store.database)
    children = [
        context.Process(
            target=insert_events, args=(url, expert_id, INSERTS_PER_PROCESS, f"p{number}")
        )
        for number in range(PROCESSES)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0
    events = store.audit.list(expert_id)
    assert len(events) == PROCESSES * INSERTS_PER_PROCESS
    counts = Counter((event.payload["tag"], event.payload["i"]) for event in events)
    assert set(counts.values()) == {1}
    assert {tag for tag, _ in counts} == {f"p{number}" for number in range(PROCESSES)}
