from __future__ import annotations

from pathlib import Path

import pytest

from metaexpert.storage import FsyncPolicy, JournalError, WriteAheadJournal, audit_record


def _record(index: int):  # type: ignore[no-untyped-def]
    return audit_record(1, "order_intent", {"i": index}, timestamp_ms=index)


@pytest.mark.parametrize("policy", list(FsyncPolicy))
def test_journal_with_uncommitted_records_returns_them_on_reopen(
    tmp_path: Path, policy: FsyncPolicy
) -> None:
    journal = WriteAheadJournal(tmp_path, fsync=policy)
    assert journal.open() == []
    records = [_record(index) for index in range(5)]
    sequences = [journal.append(record) for record in records]
    journal.mark_committed(sequences[1])
    journal.close()

    reopened = WriteAheadJournal(tmp_path, fsync=policy)
    pending = reopened.open()
    assert [sequence for sequence, _ in pending] == sequences[2:]
    assert [record.uid for _, record in pending] == [record.uid for record in records[2:]]
    assert reopened.append(_record(9)) == sequences[-1] + 1
    reopened.close()


def test_journal_with_torn_last_line_drops_only_that_line(tmp_path: Path) -> None:
    journal = WriteAheadJournal(tmp_path)
    journal.open()
    journal.append(_record(1))
    journal.close()
    (segment,) = tmp_path.glob("journal-*.jsonl")
    with open(segment, "ab") as handle:
        handle.write(b'{"s":2,"r":{"uid":"x","kind":"au')  # a crash in the middle of a write
    pending = WriteAheadJournal(tmp_path).open()
    assert [sequence for sequence, _ in pending] == [1]


def test_journal_with_corrupt_middle_line_raises_journal_error(tmp_path: Path) -> None:
    journal = WriteAheadJournal(tmp_path)
    journal.open()
    journal.append(_record(1))
    journal.close()
    (segment,) = tmp_path.glob("journal-*.jsonl")
    segment.write_bytes(segment.read_bytes() + b"garbage\n" + b'{"c":0}\n')
    with pytest.raises(JournalError, match="line 3 is corrupt"):
        WriteAheadJournal(tmp_path).open()


def test_journal_opened_twice_with_same_directory_raises_journal_error(tmp_path: Path) -> None:
    first = WriteAheadJournal(tmp_path)
    first.open()
    with pytest.raises(JournalError, match="in use by another process"):
        WriteAheadJournal(tmp_path).open()
    first.close()


def test_journal_with_everything_committed_rotates_to_small_segment(tmp_path: Path) -> None:
    journal = WriteAheadJournal(tmp_path, fsync="never", max_segment_bytes=4096)
    journal.open()
    last = 0
    for index in range(100):
        last = journal.append(_record(index))
    journal.mark_committed(last)
    segments = list(tmp_path.glob("journal-*.jsonl"))
    assert len(segments) == 1 and segments[0].stat().st_size < 100
    journal.close()
    reopened = WriteAheadJournal(tmp_path)
    assert reopened.open() == []
    assert reopened.append(_record(1)) == last + 1


def test_journal_with_unknown_fsync_policy_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync policy must be one of"):
        WriteAheadJournal(tmp_path, fsync="sometimes")


def test_journal_with_segment_left_over_from_interrupted_open_replays_each_record_once(
    tmp_path: Path,
) -> None:
    journal = WriteAheadJournal(tmp_path)
    journal.open()
    journal.append(_record(1))
    journal.append(_record(2))
    journal.close()
    (segment,) = tmp_path.glob("journal-*.jsonl")
    copy = tmp_path / "journal-00000000000000000099.jsonl"  # a crash between rewrite and cleanup
    copy.write_bytes(segment.read_bytes())
    pending = WriteAheadJournal(tmp_path).open()
    assert [sequence for sequence, _ in pending] == [1, 2]
