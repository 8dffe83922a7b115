"""THE crash test: a paper-mode run killed with SIGKILL at random points, restarted each
time, ends with exactly the orders, fills and positions of an uninterrupted run.

The child (``crash_child``) trades real BTCUSDT 1h candles through a replay venue whose
clock resumes from the database after each restart, so both runs see the same market.
Children fork from a forkserver that has imported everything once, so a restart costs
milliseconds and kills land during trading, commits, journal replay and recovery alike.
Kill delays come from a seeded generator: the schedule is the same on every run.
"""

from __future__ import annotations

import multiprocessing
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from metaexpert.storage import Database
from metaexpert.storage.models import OrderRow, PositionSnapshotRow, TradeRow
from tests.persistence import crash_child

pytestmark = pytest.mark.slow

STEPS = 300
MINIMUM_KILLS = 20
MAXIMUM_CYCLES = 60
SEED = 20261125
PAUSE_SECONDS = 0.03  # a poll interval: paper mode sleeps between polls, letting the writer commit.
# With at most 0.9 s per kill cycle a cycle advances at most ~30 bars, so the 20 kills land
# before the 300-bar run can finish however fast the machine is.


def _context() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.persistence.crash_child"])
    return context


def _run_child(
    context: Any, url: str, journal: Path, *, kill_after: float | None, after_recovery: bool = False
) -> bool:
    """Run the child; kill it with SIGKILL ``kill_after`` seconds after it started (or, with
    ``after_recovery``, after it recovered and began trading). True if it completed."""
    marker = journal.parent / f"{journal.name}.trading"
    marker.unlink(missing_ok=True)
    process = context.Process(
        target=crash_child.main,
        daemon=True,
        args=(url, str(journal), STEPS, PAUSE_SECONDS, str(marker) if after_recovery else ""),
    )
    process.start()
    if after_recovery:
        deadline = time.monotonic() + 60
        while process.is_alive() and not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
    process.join(kill_after if kill_after is not None else 120)
    if process.is_alive():
        if kill_after is None:
            process.kill()
            raise AssertionError("the uninterrupted child did not finish within 120 s")
        process.kill()  # SIGKILL: no cleanup, no flush, no atexit
        process.join(10)
        return False
    assert process.exitcode == 0, f"child failed with exit code {process.exitcode} (see its stderr)"
    return True


def _own_number(client_order_id: str) -> str:
    """The run's own order number: each database has its own client id prefix
    (``me<name tag><tag><id>x``)."""
    return re.sub(r"^me[0-9a-z]{10}\d+x", "", client_order_id)


def _snapshot(url: str) -> dict[str, Any]:
    database = Database(url)
    try:

        def query(session: Any) -> dict[str, Any]:
            orders = sorted(
                (
                    _own_number(row.client_order_id),
                    row.exchange_order_id,
                    row.side,
                    row.order_type,
                    row.tag,
                    row.status,
                    round(row.quantity, 10),
                    row.price,
                    row.stop_price,
                    round(row.filled_quantity, 10),
                    round(row.average_price, 8),
                    round(row.fee, 10),
                    row.oco_group,
                    row.created_at_ms,
                )
                for row in session.scalars(select(OrderRow))
            )
            fills = sorted(
                (
                    row.trade_id,
                    _own_number(row.client_order_id),
                    row.side,
                    round(row.quantity, 10),
                    round(row.price, 8),
                    round(row.fee, 10),
                    row.timestamp_ms,
                    row.liquidity,
                )
                for row in session.scalars(select(TradeRow))
            )
            snapshots = [
                (
                    row.timestamp_ms,
                    row.action,
                    row.symbol,
                    row.side,
                    round(row.quantity, 10),
                    round(row.entry_price, 8),
                )
                for row in session.scalars(
                    select(PositionSnapshotRow).order_by(PositionSnapshotRow.id)
                )
            ]
            return {"orders": orders, "fills": fills, "position_snapshots": sorted(snapshots)}

        data = database.read(query)
        latest: dict[tuple[str, str], tuple[Any, ...]] = {}
        for snapshot in data["position_snapshots"]:
            latest[(snapshot[2], snapshot[3])] = snapshot
        data["positions"] = sorted(latest.values())
        return data
    finally:
        database.dispose()


def _bars_done(url: str) -> int:
    """How many bars the crashed run has committed so far (its progress when killed)."""
    database = Database(url)
    try:
        first = crash_child.FIRST_BAR_MS + crash_child.LOOKBACK * crash_child.STEP_MS
        from metaexpert.storage.models import BarCursorRow

        cursor = database.read(lambda session: session.scalar(select(BarCursorRow.last_bar_ms)))
        return 0 if cursor is None else (cursor - first) // crash_child.STEP_MS + 1
    except Exception:  # noqa: BLE001 - killed before the schema existed
        return 0
    finally:
        database.dispose()


def _crash_and_compare(
    tmp_path: Path, reference_url: str, crashed_url: str, kill_window: tuple[float, float]
) -> None:
    context = _context()
    assert crash_child.DATA_FILE.is_file(), f"recorded candles missing: {crash_child.DATA_FILE}"
    assert _run_child(context, reference_url, tmp_path / "journal-reference", kill_after=None)
    reference = _snapshot(reference_url)
    assert len(reference["fills"]) > 30 and len(reference["orders"]) > 60, (
        "the expert must trade a lot"
    )

    schedule = random.Random(SEED)
    kills = cycles = 0
    journal = tmp_path / "journal-crashed"
    started = time.monotonic()
    completed = False
    progress: set[int] = set()
    while not completed:
        cycles += 1
        assert cycles <= MAXIMUM_CYCLES, f"no completion after {MAXIMUM_CYCLES} restarts"
        # Even cycles: a kill anywhere from the start (migration, journal replay, recovery,
        # trading); odd cycles: a kill during trading, after recovery finished.
        after_recovery = cycles % 2 == 0
        window = (0.0, 0.2) if after_recovery else kill_window
        kill_after = schedule.uniform(*window) if kills < MINIMUM_KILLS else None
        completed = _run_child(
            context, crashed_url, journal, kill_after=kill_after, after_recovery=after_recovery
        )
        if not completed:
            kills += 1
            progress.add(_bars_done(crashed_url))
    crashed = _snapshot(crashed_url)
    elapsed = time.monotonic() - started
    print(
        f"\ncrash test: {kills} SIGKILLs, {cycles} starts, {elapsed:.1f} s; reference "
        f"{len(reference['orders'])} orders, {len(reference['fills'])} fills, "
        f"{len(reference['position_snapshots'])} position snapshots"
    )
    assert kills >= MINIMUM_KILLS
    inside = {bars for bars in progress if 0 < bars < STEPS}
    print(f"crash test: kills landed after {sorted(progress)} committed bars")
    assert len(inside) >= 3, (
        f"kills must land all through the run, not only at its ends: {progress}"
    )
    for part in ("orders", "fills", "positions", "position_snapshots"):
        missing = sorted(set(reference[part]) - set(crashed[part]))
        extra = sorted(set(crashed[part]) - set(reference[part]))
        assert crashed[part] == reference[part], (
            f"{part} differ after {kills} kills: only in the uninterrupted run {missing[:6]}, "
            f"only in the crashed run {extra[:6]}"
        )
    print("crash test: orders, fills and positions identical to the uninterrupted run")


def test_paper_run_with_random_sigkills_ends_like_uninterrupted_run_on_sqlite(tmp_path):
    _crash_and_compare(
        tmp_path,
        f"sqlite:///{tmp_path / 'reference.sqlite'}",
        f"sqlite:///{tmp_path / 'crashed.sqlite'}",
        kill_window=(0.2, 0.9),
    )


@pytest.mark.postgres
def test_paper_run_with_random_sigkills_ends_like_uninterrupted_run_on_postgresql(
    tmp_path, request
):
    from tests.storage.conftest import _postgres_schema_url

    reference = _postgres_schema_url(request)
    crashed = _postgres_schema_url(request)
    try:
        _crash_and_compare(tmp_path, next(reference), next(crashed), kill_window=(0.2, 0.9))
    finally:
        for generator in (reference, crashed):
            generator.close()  # drops the schema
    shutil.rmtree(tmp_path / "journal-reference", ignore_errors=True)
