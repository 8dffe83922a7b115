"""A SIGKILL inside the journal writes of one step: whole steps are kept, the torn one dropped."""

from __future__ import annotations

from metaexpert.core.enums import OrderSide, OrderType
from metaexpert.core.order import Order
from metaexpert.engine.persistence import COMMIT_STREAM, drop_torn_group
from metaexpert.storage import (
    Database,
    StateStore,
    WriteAheadJournal,
    bar_cursor_record,
    order_record,
    state_set_record,
)


def test_drop_torn_group_with_half_written_last_step_keeps_whole_steps_only(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'state.sqlite'}")
    database.upgrade()
    store = StateStore(database)
    eid = store.experts.register("torn", trade_mode="paper")
    whole = Order("BTCUSDT", OrderSide.BUY, OrderType.MARKET, 0.01, client_order_id="whole-1")
    torn = Order("BTCUSDT", OrderSide.BUY, OrderType.MARKET, 0.01, client_order_id="torn-1")
    journal = WriteAheadJournal(tmp_path / "journal")
    journal.open()
    for record in (
        order_record(eid, whole),
        state_set_record(eid, "step", 1),
        bar_cursor_record(eid, "BTCUSDT:1h", 1_000),
        bar_cursor_record(eid, COMMIT_STREAM, 1),
    ):
        journal.append(record)
    for record in (
        order_record(eid, torn),
        state_set_record(eid, "step", 2),
    ):  # killed before the cursor
        journal.append(record)
    journal.close()

    dropped = drop_torn_group(store, tmp_path / "journal")

    assert dropped == 2
    assert store.orders.get(eid, "whole-1") is not None
    assert store.orders.get(eid, "torn-1") is None, "half a step must not be restored"
    assert store.state.get(eid, "step") == 1
    assert store.bar_cursors.all(eid)["BTCUSDT:1h"] == 1_000
    again = WriteAheadJournal(tmp_path / "journal")
    assert again.open() == [], "nothing is left to replay"
    again.close()
    database.dispose()


def test_drop_torn_group_with_empty_journal_changes_nothing(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'state.sqlite'}")
    database.upgrade()
    assert drop_torn_group(StateStore(database), tmp_path / "journal") == 0
    database.dispose()
