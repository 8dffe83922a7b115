from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import func, select, text

from metaexpert.core import Account, Position, PositionSide
from metaexpert.storage import Archiver, ArchiveVerificationError, StateStore, audit_record
from metaexpert.storage.models import ArchiveManifestRow, AuditEventRow

DAY_MS = 86_400_000
START = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)


def _audit_rows(store: StateStore, session_table: str = "audit_events") -> list[dict]:
    with store.database.session(read_only=True) as session:
        rows = (
            session.execute(select(AuditEventRow.__table__).order_by(AuditEventRow.id))
            .mappings()
            .all()
        )
    return [dict(row) for row in rows]


def _fill_audit(store: StateStore, expert_id: int, days: int = 3, per_day: int = 4) -> None:
    records = [
        audit_record(
            expert_id,
            "order_intent",
            {"day": day, "n": n, "price": 100.0 + n / 3},
            timestamp_ms=START + day * DAY_MS + n * 1_000,
            client_order_id=f"c{day}-{n}",
        )
        for day in range(days)
        for n in range(per_day)
    ]
    store.apply(records)


def test_archive_audit_events_with_cutoff_moves_old_rows_to_dated_parquet(
    store: StateStore, expert_id: int, tmp_path: Path
) -> None:
    _fill_audit(store, expert_id)
    before = _audit_rows(store)
    archiver = Archiver(store.database, tmp_path / "archive")
    result = archiver.archive("audit_events", START + 2 * DAY_MS)
    assert result.row_count == 8
    (batch,) = result.batches
    assert [entry["path"] for entry in result.files] == [
        f"table=audit_events/date=2026-01-01/part-{batch.batch_uid}.parquet",
        f"table=audit_events/date=2026-01-02/part-{batch.batch_uid}.parquet",
    ]
    remaining = _audit_rows(store)
    assert [row["id"] for row in remaining] == [row["id"] for row in before[8:]]
    archived = archiver.read_archive("audit_events")
    assert archived.height == 8
    assert archived["id"].to_list() == [row["id"] for row in before[:8]]
    assert [json.loads(p) for p in archived["payload"].to_list()] == [
        row["payload"] for row in before[:8]
    ]
    assert archiver.verify_files() == []
    with store.database.session(read_only=True) as session:
        manifest = session.scalars(select(ArchiveManifestRow)).one()
    assert (manifest.table_name, manifest.row_count, manifest.rows_checksum) == (
        "audit_events",
        8,
        batch.rows_checksum,
    )


def test_archive_then_restore_with_audit_rows_gives_back_identical_rows(
    store: StateStore, expert_id: int, tmp_path: Path
) -> None:
    _fill_audit(store, expert_id)
    before = _audit_rows(store)
    archiver = Archiver(store.database, tmp_path)
    archiver.archive("audit_events", START + 2 * DAY_MS)
    assert archiver.restore("audit_events") == 8
    assert _audit_rows(store) == before
    assert archiver.restore("audit_events") == 0  # already there: nothing inserted twice


def test_read_archive_with_time_window_returns_only_rows_inside(
    store: StateStore, expert_id: int, tmp_path: Path
) -> None:
    _fill_audit(store, expert_id)
    archiver = Archiver(store.database, tmp_path)
    archiver.archive("audit_events", START + 3 * DAY_MS)
    window = archiver.read_archive(
        "audit_events", start_ms=START + DAY_MS, end_ms=START + DAY_MS + 2_500
    )
    assert window["client_order_id"].to_list() == ["c1-0", "c1-1", "c1-2"]


def test_archive_with_no_old_rows_writes_nothing_and_deletes_nothing(
    store: StateStore, expert_id: int, tmp_path: Path
) -> None:
    _fill_audit(store, expert_id, days=1)
    result = Archiver(store.database, tmp_path / "archive").archive("audit_events", START - 1)
    assert (result.row_count, result.files, result.batches) == (0, [], [])
    assert len(_audit_rows(store)) == 4
    assert not (tmp_path / "archive").exists()


def test_archive_with_corrupted_file_check_deletes_nothing_and_removes_files(
    store: StateStore, expert_id: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill_audit(store, expert_id)
    archiver = Archiver(store.database, tmp_path)
    original = archiver._write_files

    def write_then_damage(model, rows, batch_uid):  # type: ignore[no-untyped-def]
        files = original(model, rows, batch_uid)
        damaged = tmp_path / files[0]["path"]
        frame = pl.read_parquet(damaged)
        frame.with_columns(pl.col("client_order_id").str.replace("c0-1", "forged")).write_parquet(
            damaged
        )
        files[0]["sha256"] = __import__(
            "metaexpert.storage.archive", fromlist=["_file_sha256"]
        )._file_sha256(damaged)
        return files

    monkeypatch.setattr(archiver, "_write_files", write_then_damage)
    with pytest.raises(ArchiveVerificationError, match="checksum.*nothing deleted"):
        archiver.archive("audit_events", START + 2 * DAY_MS)
    assert len(_audit_rows(store)) == 12
    assert list(tmp_path.rglob("*.parquet")) == []


def test_archive_with_rows_arriving_during_archival_deletes_nothing(
    store: StateStore, expert_id: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill_audit(store, expert_id)
    archiver = Archiver(store.database, tmp_path)
    original = archiver._verify_files

    def verify_then_late_insert(*arguments):  # type: ignore[no-untyped-def]
        original(*arguments)
        store.apply([audit_record(expert_id, "late", {}, timestamp_ms=START + 5)])

    monkeypatch.setattr(archiver, "_verify_files", verify_then_late_insert)
    with pytest.raises(ArchiveVerificationError, match="changed while archiving"):
        archiver.archive("audit_events", START + DAY_MS)
    assert len(_audit_rows(store)) == 13


def test_archive_of_unknown_table_raises_value_error_listing_tables(
    store: StateStore, tmp_path: Path
) -> None:
    with pytest.raises(
        ValueError, match="'orders' cannot be archived; archivable tables: account_snapshots"
    ):
        Archiver(store.database, tmp_path).archive("orders", START)


def test_archive_position_snapshots_with_old_open_position_keeps_latest_snapshot(
    store: StateStore, expert_id: int, tmp_path: Path
) -> None:
    position = Position("BTCUSDT", PositionSide.LONG, quantity=1.0, entry_price=100.0)
    for step in range(3):
        position.quantity = 1.0 + step
        store.positions.save_snapshot(expert_id, position, timestamp_ms=START + step)
    store.accounts.save_snapshot(expert_id, Account("USDT", 100.0), timestamp_ms=START)
    store.accounts.save_snapshot(expert_id, Account("USDT", 200.0), timestamp_ms=START + 1)
    archiver = Archiver(store.database, tmp_path)
    assert archiver.archive("position_snapshots", START + DAY_MS).row_count == 2
    assert archiver.archive("account_snapshots", START + DAY_MS).row_count == 1
    recovery = store.load_recovery(expert_id)
    assert recovery.positions[0].quantity == 3.0
    assert recovery.account is not None and recovery.account.balance == 200.0


def test_delete_of_audit_rows_newer_than_archive_cutoff_is_still_refused(
    store: StateStore, expert_id: int, tmp_path: Path
) -> None:
    _fill_audit(store, expert_id)
    Archiver(store.database, tmp_path).archive("audit_events", START + DAY_MS)
    with pytest.raises(Exception, match="append-only"), store.database.session() as session:
        session.execute(text("DELETE FROM audit_events"))
    with store.database.session(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(AuditEventRow)) == 8


def test_archive_with_small_batches_archives_everything_in_several_verified_batches(
    store: StateStore, expert_id: int, tmp_path: Path
) -> None:
    _fill_audit(store, expert_id)
    before = _audit_rows(store)
    archiver = Archiver(store.database, tmp_path / "archive")
    result = archiver.archive("audit_events", START + 3 * DAY_MS, batch_rows=5)
    assert [batch.row_count for batch in result.batches] == [5, 5, 2]
    assert _audit_rows(store) == []
    with store.database.session(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(ArchiveManifestRow)) == 3
    assert archiver.restore("audit_events") == 12
    assert _audit_rows(store) == before


def test_delete_of_unarchived_old_audit_row_after_partial_archive_is_refused(
    store: StateStore, expert_id: int, tmp_path: Path
) -> None:
    _fill_audit(store, expert_id)
    Archiver(store.database, tmp_path / "archive").archive(
        "audit_events", START + 3 * DAY_MS, batch_rows=5
    )
    store.apply(
        [audit_record(expert_id, "late", {}, timestamp_ms=START)]
    )  # old, but never archived
    with pytest.raises(Exception, match="append-only"), store.database.session() as session:
        session.execute(text("DELETE FROM audit_events"))
