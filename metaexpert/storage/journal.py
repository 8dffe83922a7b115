"""A local write-ahead journal: records survive a crash between acknowledgement and commit.

Format: JSON lines in segment files ``journal-<first sequence>.jsonl``. A record line
is ``{"s": <sequence>, "r": <record>}``; a commit line ``{"c": <sequence>}`` says that
every record up to that sequence is in the database. Records are committed in
sequence order, so one watermark is enough.

Durability of ``append`` by ``fsync`` policy:

* ``always``: the line is written and ``fdatasync``-ed before ``append`` returns; it
  survives a process crash (SIGKILL) and a machine crash or power loss.
* ``batch``: the line is written (in the kernel's page cache) before ``append``
  returns, and the BatchWriter syncs the file at every flush cycle; it survives a
  process crash, and a machine crash loses at most one flush interval.
* ``never``: written before ``append`` returns, synced by the operating system when it
  likes; survives a process crash only.

One process owns a journal directory at a time (an exclusive ``flock``), so two
writers can never interleave or replay each other's records.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from enum import StrEnum
from pathlib import Path

from metaexpert.storage.errors import JournalError
from metaexpert.storage.records import StorageRecord

_SEGMENT_PREFIX = "journal-"
_SEGMENT_SUFFIX = ".jsonl"


class FsyncPolicy(StrEnum):
    ALWAYS = "always"
    BATCH = "batch"
    NEVER = "never"


class WriteAheadJournal:
    def __init__(
        self,
        directory: str | Path,
        *,
        fsync: FsyncPolicy | str = FsyncPolicy.ALWAYS,
        max_segment_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        try:
            self.fsync = FsyncPolicy(fsync)
        except ValueError:
            raise ValueError(
                f"fsync policy must be one of {[p.value for p in FsyncPolicy]}, got {fsync!r}"
            ) from None
        if max_segment_bytes < 1024:
            raise ValueError(f"max_segment_bytes must be at least 1024, got {max_segment_bytes}")
        self.directory = Path(directory)
        self.max_segment_bytes = max_segment_bytes
        self._lock = threading.Lock()
        self._lock_file: int | None = None
        self._segment: Path | None = None
        self._descriptor: int | None = None
        self._segment_bytes = 0
        self._last_sequence = 0
        self._committed = 0

    # ----------------------------------------------------------------- lifecycle
    def open(self) -> list[tuple[int, StorageRecord]]:
        """Lock the directory, and return the records not yet committed, in order.

        The surviving records are rewritten into one fresh segment (a torn last line
        from a crash is dropped: it was never acknowledged) and older segments removed.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        lock_path = self.directory / "journal.lock"
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise JournalError(
                f"journal {self.directory} is in use by another process; give each writer its own directory"
            ) from None
        self._lock_file = descriptor
        pending, last_sequence, committed = self._read_segments()
        self._last_sequence = last_sequence
        self._committed = committed
        old_segments = self._segments()
        lines = [f'{{"c":{committed}}}'] + [
            f'{{"s":{sequence},"r":{line}}}' for sequence, line in pending
        ]
        self._start_segment(last_sequence + 1, lines)
        for segment in old_segments:
            if segment != self._segment:
                segment.unlink()
        _sync_directory(self.directory)
        return [(sequence, StorageRecord.from_json(line)) for sequence, line in pending]

    def close(self) -> None:
        with self._lock:
            if self._descriptor is not None:
                os.fsync(self._descriptor)
                os.close(self._descriptor)
                self._descriptor = None
            if self._lock_file is not None:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                os.close(self._lock_file)
                self._lock_file = None

    # ------------------------------------------------------------------- writing
    def append(self, record: StorageRecord) -> int:
        """Write one record; returns its sequence number. Durable per the fsync policy on return."""
        body = record.to_json()
        with self._lock:
            descriptor = self._require_open()
            sequence = self._last_sequence + 1
            line = f'{{"s":{sequence},"r":{body}}}\n'.encode()
            _write_all(descriptor, line)
            if self.fsync is FsyncPolicy.ALWAYS:
                os.fdatasync(descriptor)
            self._last_sequence = sequence
            self._segment_bytes += len(line)
            return sequence

    def sync(self) -> None:
        """Force written lines to disk (the BatchWriter calls this every cycle under ``batch``)."""
        with self._lock:
            if self._descriptor is not None and self.fsync is not FsyncPolicy.NEVER:
                os.fdatasync(self._descriptor)

    def mark_committed(self, sequence: int) -> None:
        """Record that every record up to ``sequence`` is in the database; rotate when possible."""
        with self._lock:
            descriptor = self._require_open()
            if sequence <= self._committed:
                return
            line = f'{{"c":{sequence}}}\n'.encode()
            _write_all(descriptor, line)
            self._segment_bytes += len(line)
            self._committed = sequence
            if (
                self._committed == self._last_sequence
                and self._segment_bytes >= self.max_segment_bytes
            ):
                previous = self._segment
                os.close(descriptor)
                self._descriptor = None
                self._start_segment(self._last_sequence + 1, [f'{{"c":{self._committed}}}'])
                if previous is not None:
                    previous.unlink()
                _sync_directory(self.directory)

    @property
    def last_sequence(self) -> int:
        return self._last_sequence

    @property
    def committed_sequence(self) -> int:
        return self._committed

    # ----------------------------------------------------------------- internals
    def _require_open(self) -> int:
        if self._descriptor is None:
            raise JournalError(f"journal {self.directory} is not open")
        return self._descriptor

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"{_SEGMENT_PREFIX}*{_SEGMENT_SUFFIX}"))

    def _start_segment(self, first_sequence: int, lines: list[str]) -> None:
        path = self.directory / f"{_SEGMENT_PREFIX}{first_sequence:020d}{_SEGMENT_SUFFIX}"
        temporary = path.with_suffix(".tmp")
        data = b"".join(line.encode() + b"\n" for line in lines)
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        self._segment = path
        self._descriptor = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._segment_bytes = len(data)

    def _read_segments(self) -> tuple[list[tuple[int, str]], int, int]:
        records: dict[int, str] = {}  # by sequence: a crash during open() can leave a record twice
        last_sequence = 0
        committed = 0
        segments = self._segments()
        for segment_index, segment in enumerate(segments):
            lines = segment.read_bytes().split(b"\n")
            complete_end = len(lines) - 1  # text after the last newline is an unfinished write
            for line_number, raw in enumerate(lines[:complete_end], start=1):
                if not raw.strip():
                    continue
                try:
                    entry = json.loads(raw)
                except json.JSONDecodeError:
                    is_tail = segment_index == len(segments) - 1 and line_number == complete_end
                    if is_tail:
                        continue
                    raise JournalError(f"journal {segment} line {line_number} is corrupt") from None
                if "c" in entry:
                    committed = max(committed, int(entry["c"]))
                elif "s" in entry:
                    sequence = int(entry["s"])
                    last_sequence = max(last_sequence, sequence)
                    records[sequence] = json.dumps(entry["r"], separators=(",", ":"))
        pending = [
            (sequence, records[sequence]) for sequence in sorted(records) if sequence > committed
        ]
        return pending, max(last_sequence, committed), committed


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
