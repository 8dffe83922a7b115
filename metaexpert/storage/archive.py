"""Retention: moving old rows from the hot database to Parquet files, verified first.

Nothing is deleted by default; archival is an explicit call (the nightly Prefect flow
makes it). ``Archiver(database, directory).archive(table, older_than_ms)``:

1. selects the rows older than the cutoff,
2. writes them to ``<directory>/table=<table>/date=YYYY-MM-DD/part-<batch>.parquet``
   (UTC date of each row's timestamp),
3. reads the files back and compares the row count and a SHA-256 checksum of the
   canonical row content with the selected rows,
4. then, in one transaction, checks that the rows matching the cutoff are still
   exactly those rows, records an ``archive_manifests`` row (files, their SHA-256,
   row count, checksum) and deletes the rows.

If any check fails the files are removed and nothing is deleted. The audit trail's
triggers refuse every DELETE except of rows inside a recorded manifest's batch (id
range and cutoff), so audit rows can leave the database only through this verified
path, and only the rows that were verified.
The latest position snapshot per (expert, symbol, side) and the latest account
snapshot per expert are never archived: restart recovery needs them.

Market time: row timestamps are the time of the market the expert traded in (a sandbox or a
replay runs months behind the wall clock), so retention is counted per expert from its own
newest row (``market_clocks``), not from the wall clock: "older than 90 days" of an expert
replaying June 2025 means older than 90 days before its latest June 2025 row. ``archive(...,
experts=(id,))`` limits a run to the rows of those experts (``None`` = rows without one).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from metaexpert.storage.apply import insert_for
from metaexpert.storage.column_types import UTCDateTime
from metaexpert.storage.database import Database
from metaexpert.storage.errors import ArchiveVerificationError
from metaexpert.storage.models import (
    AccountSnapshotRow,
    ArchiveManifestRow,
    AuditEventRow,
    Base,
    DecisionRow,
    ErrorRow,
    PositionSnapshotRow,
    TradeRow,
)
from metaexpert.storage.records import new_uid

ARCHIVABLE_TABLES: dict[str, type[Base]] = {
    "audit_events": AuditEventRow,
    "trades": TradeRow,
    "position_snapshots": PositionSnapshotRow,
    "account_snapshots": AccountSnapshotRow,
    "decisions": DecisionRow,
    "errors": ErrorRow,
}
_DELETE_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ArchiveBatch:
    """One verified unit of archival: its rows left the database together, in one transaction."""

    batch_uid: str
    row_count: int
    rows_checksum: str
    files: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    table: str
    cutoff_ms: int
    batches: list[ArchiveBatch]

    @property
    def row_count(self) -> int:
        return sum(batch.row_count for batch in self.batches)

    @property
    def files(self) -> list[dict[str, Any]]:
        return [entry for batch in self.batches for entry in batch.files]


class Archiver:
    def __init__(self, database: Database, directory: str | Path) -> None:
        self.database = database
        self.directory = Path(directory)

    # ------------------------------------------------------------------ archive
    def archive(
        self,
        table: str,
        older_than_ms: int,
        *,
        batch_rows: int = 50_000,
        experts: tuple[int | None, ...] | None = None,
    ) -> ArchiveResult:
        """Move rows of ``table`` with a timestamp before ``older_than_ms`` into Parquet files.

        Rows go in batches of at most ``batch_rows`` (oldest ids first) so memory stays
        bounded; each batch is written, verified and deleted on its own. If a batch fails
        verification, the batches before it stay archived and the error is raised.
        ``experts`` limits the run to rows of those expert ids (``None`` in it: rows without
        an expert); by default every expert's rows older than the cutoff go.
        """
        model = _model(table)
        if (
            not isinstance(older_than_ms, int)
            or isinstance(older_than_ms, bool)
            or older_than_ms <= 0
        ):
            raise ValueError(
                f"older_than_ms must be a positive UTC epoch milliseconds integer, got {older_than_ms!r}"
            )
        if batch_rows <= 0:
            raise ValueError(f"batch_rows must be positive, got {batch_rows}")
        batches: list[ArchiveBatch] = []
        while True:
            batch = self._archive_batch(model, older_than_ms, batch_rows, experts)
            if batch is None:
                return ArchiveResult(table, older_than_ms, batches)
            batches.append(batch)

    def _archive_batch(
        self,
        model: type[Base],
        cutoff_ms: int,
        limit: int,
        experts: tuple[int | None, ...] | None = None,
    ) -> ArchiveBatch | None:
        table = model.__tablename__
        rows = self.database.read(
            lambda session: _select_rows(session, model, cutoff_ms, limit, experts),
            what=f"select {table} to archive",
        )
        if not rows:
            return None
        checksum = _checksum(rows, model.__table__)
        batch_uid = new_uid()
        files = self._write_files(model, rows, batch_uid)
        try:
            self._verify_files(model, files, len(rows), checksum)
            ids = [row["id"] for row in rows]
            self.database.write(
                lambda session: _delete_verified(
                    session, model, cutoff_ms, limit, ids, checksum, batch_uid, files, experts
                ),
                what=f"archive {table}",
            )
        except BaseException:
            for entry in files:
                (self.directory / entry["path"]).unlink(missing_ok=True)
            raise
        return ArchiveBatch(batch_uid, len(rows), checksum, files)

    def _write_files(
        self, model: type[Base], rows: list[dict[str, Any]], batch_uid: str
    ) -> list[dict[str, Any]]:
        table = model.__table__
        time_column = _time_column(model)
        by_date: dict[date, list[dict[str, Any]]] = {}
        for row in rows:
            day = datetime.fromtimestamp(row[time_column] / 1000, tz=UTC).date()
            by_date.setdefault(day, []).append(row)
        files: list[dict[str, Any]] = []
        for day in sorted(by_date):
            frame = _to_frame(table, by_date[day])
            relative = (
                Path(f"table={table.name}")
                / f"date={day.isoformat()}"
                / f"part-{batch_uid}.parquet"
            )
            target = self.directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_suffix(".parquet.tmp")
            frame.write_parquet(temporary)
            temporary.replace(target)
            files.append(
                {
                    "path": relative.as_posix(),
                    "rows": frame.height,
                    "sha256": _file_sha256(target),
                    "date": day.isoformat(),
                }
            )
        return files

    def _verify_files(
        self,
        model: type[Base],
        files: list[dict[str, Any]],
        expected_rows: int,
        expected_checksum: str,
    ) -> None:
        table = model.__table__
        read_back: list[dict[str, Any]] = []
        for entry in files:
            path = self.directory / entry["path"]
            if _file_sha256(path) != entry["sha256"]:
                raise ArchiveVerificationError(f"archive file {path} changed while being verified")
            read_back.extend(_from_frame(table, pl.read_parquet(path)))
        read_back.sort(key=lambda row: row["id"])
        if len(read_back) != expected_rows:
            raise ArchiveVerificationError(
                f"archive of {table.name}: files hold {len(read_back)} rows, {expected_rows} were selected; nothing deleted"
            )
        actual = _checksum(read_back, table)
        if actual != expected_checksum:
            raise ArchiveVerificationError(
                f"archive of {table.name}: checksum of the files ({actual}) differs from the selected rows "
                f"({expected_checksum}); nothing deleted"
            )

    def market_clocks(self) -> dict[int | None, int]:
        """Each expert's market time: its newest row timestamp over the archivable tables.

        Rows without an expert (``None``) get the newest of those rows. Empty when no rows."""

        def query(session: Session) -> dict[int | None, int]:
            clocks: dict[int | None, int] = {}
            for model in ARCHIVABLE_TABLES.values():
                column: Any = model
                statement = select(column.expert_id, func.max(column.timestamp_ms)).group_by(
                    column.expert_id
                )
                for expert_id, newest in session.execute(statement):
                    if newest is not None:
                        clocks[expert_id] = max(int(newest), clocks.get(expert_id, int(newest)))
            return clocks

        return self.database.read(query, what="read market clocks")

    # ------------------------------------------------------------------- read back
    def archive_files(
        self, table: str, *, start_date: date | None = None, end_date: date | None = None
    ) -> list[Path]:
        """Parquet files of ``table`` whose partition date is within [start_date, end_date]."""
        _model(table)
        root = self.directory / f"table={table}"
        result = []
        for path in sorted(root.glob("date=*/part-*.parquet")):
            day = date.fromisoformat(path.parent.name.removeprefix("date="))
            if (start_date is None or day >= start_date) and (end_date is None or day <= end_date):
                result.append(path)
        return result

    def read_archive(
        self, table: str, *, start_ms: int | None = None, end_ms: int | None = None
    ) -> pl.DataFrame:
        """Archived rows of ``table`` (JSON columns as text), optionally within [start_ms, end_ms)."""
        model = _model(table)
        time_column = _time_column(model)
        start_date = (
            None if start_ms is None else datetime.fromtimestamp(start_ms / 1000, tz=UTC).date()
        )
        end_date = None if end_ms is None else datetime.fromtimestamp(end_ms / 1000, tz=UTC).date()
        files = self.archive_files(table, start_date=start_date, end_date=end_date)
        if not files:
            return _to_frame(model.__table__, [])
        frame = pl.concat([pl.read_parquet(path) for path in files], how="vertical").sort("id")
        if start_ms is not None:
            frame = frame.filter(pl.col(time_column) >= start_ms)
        if end_ms is not None:
            frame = frame.filter(pl.col(time_column) < end_ms)
        return frame

    def restore(self, table: str, *, start_ms: int | None = None, end_ms: int | None = None) -> int:
        """Put archived rows back into the hot database; rows already there are skipped. Returns rows inserted."""
        model = _model(table)
        frame = self.read_archive(table, start_ms=start_ms, end_ms=end_ms)
        rows = _from_frame(model.__table__, frame)
        if not rows:
            return 0

        def unit(session: Session) -> int:
            inserted = 0
            for start in range(0, len(rows), _DELETE_CHUNK):
                chunk = rows[start : start + _DELETE_CHUNK]
                statement = (
                    insert_for(session, model)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .returning(model.id)
                )
                inserted += len(session.execute(statement).all())
            return inserted

        return self.database.write(unit, what=f"restore {table}")

    def verify_files(self, table: str | None = None) -> list[str]:
        """Problems found comparing every recorded archive file with its manifest SHA-256 (empty = intact)."""

        def query(session: Session) -> list[ArchiveManifestRow]:
            statement = select(ArchiveManifestRow)
            if table is not None:
                statement = statement.where(ArchiveManifestRow.table_name == table)
            return list(session.scalars(statement.order_by(ArchiveManifestRow.id)))

        problems = []
        for manifest in self.database.read(query, what="read archive manifests"):
            for entry in manifest.files:
                path = self.directory / entry["path"]
                if not path.exists():
                    problems.append(f"{path}: missing (archive batch {manifest.batch_uid})")
                elif _file_sha256(path) != entry["sha256"]:
                    problems.append(
                        f"{path}: SHA-256 differs from the manifest (archive batch {manifest.batch_uid})"
                    )
        return problems


# --------------------------------------------------------------------------- helpers
def _model(table: str) -> type[Base]:
    try:
        return ARCHIVABLE_TABLES[table]
    except KeyError:
        raise ValueError(
            f"table {table!r} cannot be archived; archivable tables: {', '.join(sorted(ARCHIVABLE_TABLES))} "
            "(orders, state and configuration stay in the database)"
        ) from None


def _time_column(model: type[Base]) -> str:
    return "timestamp_ms"


def _condition(
    session: Session, model: Any, cutoff_ms: int, experts: tuple[int | None, ...] | None = None
) -> list[Any]:
    conditions = [model.timestamp_ms < cutoff_ms]
    if experts is not None:
        ids = [expert_id for expert_id in experts if expert_id is not None]
        chosen = [model.expert_id.in_(ids)] if ids else []
        if None in experts:
            chosen.append(model.expert_id.is_(None))
        conditions.append(or_(*chosen) if chosen else model.id < 0)
    if model is PositionSnapshotRow:
        latest = select(func.max(model.id)).group_by(model.expert_id, model.symbol, model.side)
        conditions.append(model.id.not_in(latest))
    elif model is AccountSnapshotRow:
        latest = select(func.max(model.id)).group_by(model.expert_id)
        conditions.append(model.id.not_in(latest))
    return conditions


def _select_rows(
    session: Session,
    model: Any,
    cutoff_ms: int,
    limit: int,
    experts: tuple[int | None, ...] | None = None,
) -> list[dict[str, Any]]:
    table = model.__table__
    statement = (
        select(table)
        .where(*_condition(session, model, cutoff_ms, experts))
        .order_by(table.c.id)
        .limit(limit)
    )
    return [dict(row) for row in session.execute(statement).mappings()]


def _delete_verified(
    session: Session,
    model: Any,
    cutoff_ms: int,
    limit: int,
    ids: list[int],
    checksum: str,
    batch_uid: str,
    files: list[dict[str, Any]],
    experts: tuple[int | None, ...] | None = None,
) -> None:
    current = _select_rows(session, model, cutoff_ms, limit, experts)
    if [row["id"] for row in current] != ids or _checksum(current, model.__table__) != checksum:
        raise ArchiveVerificationError(
            f"rows of {model.__tablename__} older than {cutoff_ms} changed while archiving; nothing deleted, retry"
        )
    session.add(
        ArchiveManifestRow(
            batch_uid=batch_uid,
            table_name=model.__tablename__,
            cutoff_ms=cutoff_ms,
            row_count=len(ids),
            first_id=ids[0],
            last_id=ids[-1],
            rows_checksum=checksum,
            files=files,
            archived_at=datetime.now(tz=UTC),
        )
    )
    session.flush()
    deleted = 0
    for start in range(0, len(ids), _DELETE_CHUNK):
        chunk = ids[start : start + _DELETE_CHUNK]
        deleted += session.execute(delete(model).where(model.id.in_(chunk))).rowcount
    if deleted != len(ids):
        raise ArchiveVerificationError(
            f"deleted {deleted} rows of {model.__tablename__}, expected {len(ids)}; rolled back"
        )


def _kind(column: Any) -> str:
    """How a column travels through Parquet (JSON documents as canonical text)."""
    column_type = column.type
    if isinstance(column_type, JSON):
        return "json"
    if isinstance(column_type, (UTCDateTime, DateTime)):
        return "datetime"
    if isinstance(column_type, Boolean):
        return "boolean"
    if isinstance(column_type, Float):
        return "float"
    if isinstance(column_type, Integer):
        return "integer"
    if isinstance(column_type, (String, Text)):
        return "text"
    raise TypeError(f"no archive mapping for column {column.name} of type {column_type!r}")


_POLARS_TYPES = {
    "json": pl.String,
    "text": pl.String,
    "integer": pl.Int64,
    "float": pl.Float64,
    "boolean": pl.Boolean,
    "datetime": pl.Datetime("us", "UTC"),
}


def _canonical(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "json":
        if isinstance(value, str):
            value = json.loads(value)
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    if kind == "datetime":
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if kind == "float":
        number = float(value)
        return repr(number) if math.isfinite(number) else str(number)
    if kind == "integer":
        return int(value)
    if kind == "boolean":
        return bool(value)
    return str(value)


def _checksum(rows: list[dict[str, Any]], table: Table) -> str:
    columns = [(column.name, _kind(column)) for column in table.columns]
    digest = hashlib.sha256()
    for row in rows:
        canonical = [_canonical(kind, row[name]) for name, kind in columns]
        digest.update(json.dumps(canonical, separators=(",", ":")).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _to_frame(table: Table, rows: list[dict[str, Any]]) -> pl.DataFrame:
    data: dict[str, list[Any]] = {}
    schema: dict[str, Any] = {}
    for column in table.columns:
        kind = _kind(column)
        schema[column.name] = _POLARS_TYPES[kind]
        values = [row[column.name] for row in rows]
        if kind == "json":
            values = [_canonical("json", value) for value in values]
        elif kind == "datetime":
            values = [
                None if v is None else (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(UTC)
                for v in values
            ]
        data[column.name] = values
    return pl.DataFrame(data, schema=schema)


def _from_frame(table: Table, frame: pl.DataFrame) -> list[dict[str, Any]]:
    kinds = {column.name: _kind(column) for column in table.columns}
    rows = []
    for row in frame.iter_rows(named=True):
        converted = {}
        for name, kind in kinds.items():
            value = row[name]
            if kind == "json" and value is not None:
                value = json.loads(value)
            elif kind == "datetime" and value is not None and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            converted[name] = value
        rows.append(converted)
    return rows


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
