"""``ctx.state``: the expert's own persistent key/value store, as a dict.

Handlers read from an in-memory copy loaded at start (no database round trip on the
hot path) and every assignment or deletion is persisted at once: through the
BatchWriter when one is given (journaled, so it survives a crash), else in its own
short transaction. Values must be JSON: numbers, text, booleans, None, lists and
dicts of those. Mutating a nested value in place is not seen: assign it again.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, MutableMapping
from typing import Any

from metaexpert.storage.batch_writer import BatchWriter
from metaexpert.storage.records import StorageRecord, state_delete_record, state_set_record
from metaexpert.storage.state_store import StateStore


class ExpertState(MutableMapping[str, Any]):
    def __init__(
        self, store: StateStore, expert_id: int, *, writer: BatchWriter | None = None
    ) -> None:
        self._store = store
        self._expert_id = expert_id
        self._writer = writer
        self._values: dict[str, Any] = store.state.items(expert_id)

    def __getitem__(self, key: str) -> Any:
        return copy.deepcopy(self._values[key])

    def __setitem__(self, key: str, value: Any) -> None:
        record = state_set_record(self._expert_id, key, value)  # validates key and JSON value
        self._persist(record)
        self._values[key] = copy.deepcopy(record.payload["value"])

    def __delitem__(self, key: str) -> None:
        if key not in self._values:
            raise KeyError(key)
        self._persist(state_delete_record(self._expert_id, key))
        del self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"ExpertState(expert_id={self._expert_id}, {self._values!r})"

    def _persist(self, record: StorageRecord) -> None:
        if self._writer is not None:
            self._writer.submit(record)
        else:
            self._store.apply([record])
