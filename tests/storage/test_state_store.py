from __future__ import annotations

import dataclasses
import math

import pytest

from metaexpert.core import (
    Account,
    AccountEvent,
    ErrorEvent,
    MarginMode,
    Order,
    OrderEvent,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    PositionEvent,
    PositionSide,
    RiskEvent,
    TimeInForce,
    TradeEvent,
)
from metaexpert.core.enums import RiskEventAction
from metaexpert.storage import BatchWriter, ExpertState, StateStore, order_record, state_set_record
from metaexpert.storage.records import order_payload


def _limit_order(**overrides: object) -> Order:
    values: dict[str, object] = {
        "symbol": "BTCUSDT",
        "side": OrderSide.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": 0.123456789,
        "price": 43_210.123456789,
        "created_at": 1_700_000_000_000,
        "position_side": PositionSide.LONG,
        "tag": "entry",
    }
    values.update(overrides)
    return Order(**values)  # type: ignore[arg-type]


def test_order_payload_with_current_core_order_covers_every_field() -> None:
    # Fails when core.Order gains a field the storage layer does not persist yet.
    names = {field.name for field in dataclasses.fields(Order)} - {"trades", "status_history"}
    renamed = {
        "order_id": "exchange_order_id",
        "created_at": "created_at_ms",
        "updated_at": "updated_at_ms",
        "expire_at": "expire_at_ms",
    }
    payload = order_payload(_limit_order())
    assert {renamed.get(name, name) for name in names} <= set(payload)


def test_order_with_status_changes_and_fills_round_trips_exactly(
    store: StateStore, expert_id: int
) -> None:
    order = _limit_order(time_in_force=TimeInForce.GTD, expire_at=1_700_000_900_000)
    store.orders.save(expert_id, order)
    order.submit(1_700_000_000_100)
    store.orders.save(expert_id, order)
    trade = order.apply_fill(0.1, 43_210.1, 0.0043, "USDT", 1_700_000_000_200)
    store.record_event(expert_id, OrderEvent(order, 1_700_000_000_200))
    store.record_event(expert_id, TradeEvent(trade, 1_700_000_000_200))

    loaded = store.orders.get(expert_id, order.client_order_id)
    assert loaded is not None
    for field in dataclasses.fields(Order):
        assert getattr(loaded, field.name) == getattr(order, field.name), field.name
    assert store.orders.status_history(expert_id, order.client_order_id) == [
        (OrderStatus.CREATED, 1_700_000_000_000),
        (OrderStatus.SUBMITTED, 1_700_000_000_100),
        (OrderStatus.PARTIALLY_FILLED, 1_700_000_000_200),
    ]


def test_save_order_with_same_client_order_id_twice_keeps_one_row(
    store: StateStore, expert_id: int
) -> None:
    order = _limit_order()
    order.submit(1_700_000_000_100)
    for _ in range(3):
        store.orders.save(expert_id, order)
    store.apply([order_record(expert_id, order), order_record(expert_id, order)])
    assert len(store.orders.open_orders(expert_id)) == 1
    assert len(store.orders.status_history(expert_id, order.client_order_id)) == 2


def test_save_order_with_stale_snapshot_keeps_newer_state(
    store: StateStore, expert_id: int
) -> None:
    order = _limit_order()
    stale = order_record(expert_id, order)
    order.submit(1_700_000_000_100)
    order.cancel(1_700_000_000_200)
    store.orders.save(expert_id, order)
    store.apply([stale])  # e.g. replayed out of a journal after the newer state
    loaded = store.orders.get(expert_id, order.client_order_id)
    assert loaded is not None and loaded.status is OrderStatus.CANCELLED
    assert len(loaded.status_history) == 3


def test_open_orders_with_terminal_and_live_orders_returns_only_non_terminal(
    store: StateStore, expert_id: int
) -> None:
    created = _limit_order()
    submitted = _limit_order()
    submitted.submit(1)
    filled = _limit_order(order_type=OrderType.MARKET, price=None)
    filled.submit(1)
    filled.apply_fill(filled.quantity, 100.0, 0.0, "USDT", 2)
    cancelled = _limit_order()
    cancelled.cancel(1)
    for order in (created, submitted, filled, cancelled):
        store.orders.save(expert_id, order)
    open_ids = {order.client_order_id for order in store.orders.open_orders(expert_id)}
    assert open_ids == {created.client_order_id, submitted.client_order_id}


def test_same_client_order_id_with_two_experts_stores_two_orders(
    store: StateStore, expert_id: int
) -> None:
    other = store.experts.register("trend", trade_mode="live", exchange="binance")
    assert other != expert_id
    order = _limit_order()
    store.orders.save(expert_id, order)
    store.orders.save(other, order)
    assert store.orders.get(other, order.client_order_id) is not None
    assert store.orders.get(expert_id, order.client_order_id) is not None


def test_trade_with_same_trade_id_saved_twice_is_stored_once(
    store: StateStore, expert_id: int
) -> None:
    order = _limit_order()
    order.submit(1)
    trade = order.apply_fill(0.05, 43_000.0, 0.01, "USDT", 5)
    store.trades.save(expert_id, trade)
    store.trades.save(expert_id, trade)
    trades = store.trades.list(expert_id)
    assert trades == [trade]
    assert store.trades.list(expert_id, start_ms=6) == []


def test_load_recovery_with_saved_events_returns_everything_to_resume(
    store: StateStore, expert_id: int
) -> None:
    open_order = _limit_order()
    open_order.submit(10)
    store.record_event(expert_id, OrderEvent(open_order, 10))
    long_leg = Position(
        "BTCUSDT",
        PositionSide.LONG,
        quantity=0.5,
        entry_price=40_000.5,
        leverage=5.0,
        margin_mode=MarginMode.CROSS,
        stop_loss=39_000.0,
        opened_at=9,
        updated_at=11,
    )
    short_leg = Position("ETHUSDT", PositionSide.SHORT, quantity=2.0, entry_price=2_000.0)
    store.record_event(expert_id, PositionEvent(long_leg, 11, "opened"))
    store.record_event(expert_id, PositionEvent(short_leg, 11, "opened"))
    closed = dataclasses.replace(short_leg, quantity=0.0, realized_pnl=12.5)
    store.record_event(expert_id, PositionEvent(closed, 12, "closed"))
    store.record_event(
        expert_id, AccountEvent(Account("USDT", 9_000.0, equity=9_100.0, used_margin=4_000.0), 12)
    )
    store.record_event(expert_id, AccountEvent(Account("USDT", 9_500.0, equity=9_600.0), 13))
    store.state.set(expert_id, "regime", {"trend": "up", "since": [1, 2, 3]})
    store.bar_cursors.advance(expert_id, "BTCUSDT:1h", 3_600_000)
    store.bar_cursors.advance(expert_id, "BTCUSDT:1h", 7_200_000)
    store.bar_cursors.advance(expert_id, "BTCUSDT:1h", 3_600_000)  # replayed older cursor: ignored

    recovery = store.load_recovery(expert_id)
    assert [order.client_order_id for order in recovery.open_orders] == [open_order.client_order_id]
    assert len(recovery.positions) == 1
    assert dataclasses.asdict(recovery.positions[0]) == dataclasses.asdict(long_leg)
    assert recovery.account is not None and recovery.account.balance == 9_500.0
    assert recovery.state == {"regime": {"trend": "up", "since": [1, 2, 3]}}
    assert recovery.last_bar_ms == {"BTCUSDT:1h": 7_200_000}


def test_load_recovery_with_unknown_expert_raises_key_error(store: StateStore) -> None:
    with pytest.raises(KeyError, match="no expert with id 999"):
        store.load_recovery(999)


def test_register_expert_with_secrets_in_configuration_stores_none_of_them(
    store: StateStore,
) -> None:
    configuration = {
        "symbol": "BTCUSDT",
        "api_key": "AKIA-visible-key",
        "apiSecret": "s3cr3t-value",
        "exchange": {"api_passphrase": "pass-phrase", "password": "pw-123", "testnet": True},
        "accounts": [{"token": "tok-999", "name": "main"}],
        "database_url": "postgresql+psycopg://trader:db-pass-42@db:5432/state",
    }
    expert = store.experts.register("secretive", trade_mode="live", configuration=configuration)
    info = store.experts.get(expert)
    assert info is not None
    stored = repr(info.configuration)
    for secret in (
        "AKIA-visible-key",
        "s3cr3t-value",
        "pass-phrase",
        "pw-123",
        "tok-999",
        "db-pass-42",
    ):
        assert secret not in stored
    assert info.configuration["exchange"] == {"testnet": True}
    assert info.configuration["accounts"] == [{"name": "main"}]
    with store.database.engine.connect() as connection:
        raw = connection.exec_driver_sql("SELECT configuration FROM experts").scalar_one()
    assert "s3cr3t" not in str(raw)


def test_register_expert_twice_with_same_name_and_mode_returns_same_id(store: StateStore) -> None:
    first = store.experts.register("grid", trade_mode="paper", configuration={"levels": 5})
    second = store.experts.register("grid", trade_mode="paper", configuration={"levels": 7})
    assert first == second
    info = store.experts.get(first)
    assert info is not None and info.configuration == {"levels": 7}


def test_expert_state_with_json_values_round_trips_and_deletes(
    store: StateStore, expert_id: int
) -> None:
    values = {
        "counter": 3,
        "ratio": 0.1 + 0.2,
        "flags": [True, False, None],
        "nested": {"a": {"b": "c"}},
        "text": "é✓",
    }
    for key, value in values.items():
        store.state.set(expert_id, key, value)
    assert store.state.items(expert_id) == values
    store.state.set(expert_id, "counter", 4)
    assert store.state.get(expert_id, "counter") == 4
    store.state.delete(expert_id, "counter")
    assert store.state.get(expert_id, "counter", "missing") == "missing"


def test_expert_state_with_unserialisable_value_raises_type_error_naming_key(
    store: StateStore, expert_id: int
) -> None:
    with pytest.raises(TypeError, match="expert state 'handle'.*object"):
        store.state.set(expert_id, "handle", object())
    with pytest.raises(ValueError, match="key must be non-empty"):
        state_set_record(expert_id, "", 1)


def test_risk_event_with_details_records_decision_and_audit_event(
    store: StateStore, expert_id: int
) -> None:
    store.record_event(
        expert_id,
        RiskEvent(
            "max_drawdown",
            RiskEventAction.HALTED,
            50,
            symbol="BTCUSDT",
            reason="drawdown 12%",
            details={"drawdown": 0.12, "limit": math.inf, "api_token": "x"},
        ),
    )
    store.decisions.record(
        expert_id, domain="compliance", rule="wash_trading", action="blocked", timestamp_ms=51
    )
    decisions = store.decisions.list(expert_id)
    assert [(d.domain, d.rule, d.action) for d in decisions] == [
        ("risk", "max_drawdown", "halted"),
        ("compliance", "wash_trading", "blocked"),
    ]
    assert decisions[0].details == {"drawdown": 0.12, "limit": "Infinity"}
    assert [event.kind for event in store.audit.list(expert_id)] == [
        "risk_decision",
        "compliance_decision",
    ]


def test_error_event_with_secret_in_message_is_stored_scrubbed(
    store: StateStore, expert_id: int
) -> None:
    try:
        raise ConnectionError("login failed for postgresql://bot:hunter2@db/x with api_key=ABCDEF")
    except ConnectionError as error:
        store.record_event(expert_id, ErrorEvent(error, 77, source="broker", handler="on_bar"))
    (stored,) = store.errors.list(expert_id)
    assert stored.error_type == "builtins.ConnectionError"
    assert "hunter2" not in stored.message and "ABCDEF" not in stored.message
    assert "hunter2" not in stored.traceback and "test_error_event" in stored.traceback
    assert (stored.source, stored.handler, stored.timestamp_ms) == ("broker", "on_bar", 77)


def test_backtest_run_with_parameters_and_metrics_round_trips(store: StateStore) -> None:
    run = store.backtest_runs.start(
        "trend", parameters={"fast": 10, "slow": 30, "api_key": "k"}, data_start_ms=1, data_end_ms=2
    )
    store.backtest_runs.finish(run, {"sharpe": 1.25, "profit_factor": math.inf, "trades": 42})
    info = store.backtest_runs.get(run)
    assert info is not None
    assert info.status == "finished" and info.parameters == {"fast": 10, "slow": 30}
    assert info.metrics == {"sharpe": 1.25, "profit_factor": "Infinity", "trades": 42}
    failed = store.backtest_runs.start("trend")
    store.backtest_runs.fail(failed, RuntimeError("no data"))
    assert [r.status for r in store.backtest_runs.list("trend")] == ["finished", "failed"]
    with pytest.raises(KeyError, match="no backtest run"):
        store.backtest_runs.finish("nope", {})


def test_expert_state_mapping_with_writes_persists_across_reload(
    store: StateStore, expert_id: int, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    state = ExpertState(store, expert_id)
    state["entries"] = 2
    state["levels"] = [1.5, 2.5]
    state["levels"].append(3.5)  # a copy: in-place changes are not persisted
    del state["entries"]
    with pytest.raises(KeyError):
        del state["missing"]
    with pytest.raises(TypeError, match="cannot be stored as JSON"):
        state["bad"] = object()
    assert dict(ExpertState(store, expert_id)) == {"levels": [1.5, 2.5]}
    with BatchWriter(store, tmp_path / "journal") as writer:
        batched = ExpertState(store, expert_id, writer=writer)
        batched["mode"] = "cautious"
        assert batched["mode"] == "cautious"
        writer.flush(timeout=10)
    assert store.state.get(expert_id, "mode") == "cautious"
