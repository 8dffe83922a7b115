"""A live restart without its database adopts the venue stop and target of the venue position.

Issue 15: a live run restarted on a new machine (or after losing its SQLite file) took the open
position from the venue but not the stop-loss and take-profit that protect it there (on Binance
USD-M conditional orders, listed by the algo endpoint). The engine believed the position was
unprotected: it reported its own stop and target as unknown orders, and when the expert closed
the position both stayed live at the venue. Orders of another expert (another client id
prefix) are reported and left alone.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest

from metaexpert.core.enums import OrderType, PositionSide, RiskEventAction, TradeMode
from metaexpert.engine.persistence import expert_client_id_prefix
from tests.persistence.conftest import KEY, SECRET, drive, make_expert, make_runtime, open_recorder

pytestmark = pytest.mark.network


def _protected_expert(
    sandbox, position_mode: str, *, close_after: int | None = None, add: bool = False
):
    """Run 1 (``close_after`` None) opens a protected long once; a restarted run closes all
    after ``close_after`` bars, or (``add``) buys to the position on its first bar."""
    expert = make_expert(
        sandbox,
        market_type="futures",
        contract_type="linear",
        position_mode=position_mode,
        margin_mode="isolated",
        api_key=KEY,
        api_secret=SECRET,
    )

    @expert.on_init(
        symbol="BTCUSDT",
        timeframe="1m",
        lookback_bars=5,
        size_type="fixed_base",
        size_value=0.01,
        leverage=2,
        stop_loss_pct=5.0,
        take_profit_pct=5.0,
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, bars):
        bars_seen = ctx.state.get("bars", 0) + 1
        ctx.state["bars"] = bars_seen
        if add:
            if "added" not in ctx.state:
                ctx.buy(0.01, position_side="long")
                ctx.state["added"] = True
        elif close_after is None:
            if not ctx.positions() and "opened" not in ctx.state:
                ctx.buy(0.01, position_side="long")
                ctx.state["opened"] = True
        elif bars_seen >= close_after and ctx.positions():
            ctx.close_all()

    return expert


def _open_venue_orders(sandbox) -> list[dict]:
    return [
        o
        for o in sandbox.ledger()["orders"]
        if str(o["status"]).upper() in ("NEW", "PARTIALLY_FILLED")
    ]


def _venue_positions(sandbox) -> list[dict]:
    return [p for p in sandbox.ledger()["accounts"][KEY]["positions"] if p["amount"]]


def _first_run(sandbox, tmp_path, position_mode: str, name: str = "persisted"):
    """Run 1, live with a database: opens a long that the engine protects at the venue."""
    database = tmp_path / "first.sqlite"
    recorder = open_recorder(f"sqlite:///{database}", tmp_path / "lost", TradeMode.LIVE, name)
    runtime = asyncio.run(
        drive(
            make_runtime(_protected_expert(sandbox, position_mode), TradeMode.LIVE, recorder),
            sandbox,
            3,
        )
    )
    recorder.close()
    brackets = runtime.engine.brackets("BTCUSDT", PositionSide.LONG)
    assert sorted(o.order_type for o in brackets) == [OrderType.STOP_MARKET, OrderType.TAKE_PROFIT]
    placed = {o.client_order_id for o in brackets}
    assert {o["client_order_id"] for o in _open_venue_orders(sandbox)} == placed
    assert all(o["is_algo"] for o in _open_venue_orders(sandbox)), "USD-M conditional orders"
    database.unlink()  # the database is lost (a new machine): journal and SQLite file
    shutil.rmtree(tmp_path / "lost")
    return placed


@pytest.mark.parametrize("position_mode", ["hedge", "oneway"])
def test_live_restart_without_database_with_venue_brackets_adopts_and_cancels_them(
    sandbox, tmp_path, secret_values, position_mode
):
    secret_values.update({KEY, SECRET})
    placed = _first_run(sandbox, tmp_path, position_mode)
    recorder = open_recorder(
        f"sqlite:///{tmp_path / 'second.sqlite'}", tmp_path / "new-machine", TradeMode.LIVE
    )
    runtime = make_runtime(
        _protected_expert(sandbox, position_mode, close_after=2), TradeMode.LIVE, recorder
    )

    async def scenario():
        try:
            await runtime.start()
            engine = runtime.engine
            adopted = engine.brackets("BTCUSDT", PositionSide.LONG)
            assert {o.client_order_id for o in adopted} == placed, "the venue's stop and target"
            assert sorted(o.tag for o in adopted) == ["stop_loss", "take_profit"]
            assert all(o.client_order_id in runtime.broker.orders for o in adopted), "polled"
            assert recorder.unknown_orders == [] and runtime.unknown_orders == []
            sandbox.advance(1)
            await runtime.step()  # the position is still open: nothing placed a second bracket
            venue = _open_venue_orders(sandbox)
            assert sorted(o["type"] for o in venue) == ["STOP_MARKET", "TAKE_PROFIT_MARKET"]
            assert {o["client_order_id"] for o in venue} == placed
            for _ in range(3):  # the expert closes the position
                sandbox.advance(1)
                await runtime.step()
        finally:
            await runtime.gateway.close()

    asyncio.run(scenario())
    recorder.flush()
    engine = runtime.engine
    assert engine.portfolio.positions() == [] and _venue_positions(sandbox) == []
    assert _open_venue_orders(sandbox) == [], "both brackets cancelled at the venue"
    cancelled = [o for o in sandbox.ledger()["orders"] if o["client_order_id"] in placed]
    assert sorted(str(o["status"]).upper() for o in cancelled) == ["CANCELED", "CANCELED"]
    assert not [
        d
        for d in recorder.store.decisions.list(recorder.expert_id)
        if d.action == RiskEventAction.UNKNOWN_ORDER
    ]
    assert not engine.errors, engine.errors
    recorder.close()


def test_live_restart_without_database_with_added_position_keeps_one_stop_and_target(
    sandbox, tmp_path, secret_values
):
    secret_values.update({KEY, SECRET})
    adopted = _first_run(sandbox, tmp_path, "hedge")
    recorder = open_recorder(
        f"sqlite:///{tmp_path / 'second.sqlite'}", tmp_path / "new-machine", TradeMode.LIVE
    )
    runtime = make_runtime(_protected_expert(sandbox, "hedge", add=True), TradeMode.LIVE, recorder)
    asyncio.run(drive(runtime, sandbox, 3))
    recorder.flush()
    venue = _open_venue_orders(sandbox)
    # The adopted bracket was replaced for the larger position, not doubled.
    assert sorted(o["type"] for o in venue) == ["STOP_MARKET", "TAKE_PROFIT_MARKET"], venue
    assert [o["quantity"] for o in venue] == [pytest.approx(0.02)] * 2
    assert not {o["client_order_id"] for o in venue} & adopted
    tracked = runtime.engine.brackets("BTCUSDT", PositionSide.LONG)
    assert {o.client_order_id for o in tracked} == {o["client_order_id"] for o in venue}
    recorder.close()


def test_live_restart_without_database_with_another_experts_brackets_reports_them(
    sandbox, tmp_path, secret_values
):
    secret_values.update({KEY, SECRET})
    theirs = _first_run(sandbox, tmp_path, "hedge", name="another-expert")
    recorder = open_recorder(
        f"sqlite:///{tmp_path / 'second.sqlite'}", tmp_path / "new-machine", TradeMode.LIVE
    )
    runtime = make_runtime(_protected_expert(sandbox, "hedge"), TradeMode.LIVE, recorder)

    async def scenario():
        try:
            await runtime.start()
        finally:
            await runtime.gateway.close()

    asyncio.run(scenario())
    recorder.flush()
    assert runtime.engine.brackets("BTCUSDT", PositionSide.LONG) == []
    assert {o.client_order_id for o in recorder.unknown_orders} == theirs
    decisions = [
        d
        for d in recorder.store.decisions.list(recorder.expert_id)
        if d.rule == "reconciliation" and d.action == RiskEventAction.UNKNOWN_ORDER
    ]
    assert {next(c for c in theirs if c in d.reason) for d in decisions} == theirs
    assert {o["client_order_id"] for o in _open_venue_orders(sandbox)} == theirs, "left alone"
    recorder.close()


def test_client_id_prefix_with_lost_database_keeps_expert_part(tmp_path) -> None:
    def prefix(database: str, name: str) -> tuple[str, str]:
        recorder = open_recorder(f"sqlite:///{tmp_path / database}", tmp_path, TradeMode.LIVE, name)
        try:
            assert recorder.client_id_prefix is not None and recorder.expert_prefix is not None
            return recorder.client_id_prefix, recorder.expert_prefix
        finally:
            recorder.close()

    first, expert = prefix("a.sqlite", "trend")
    second, same_expert = prefix("b.sqlite", "trend")  # the same expert on a new machine
    _, other_expert = prefix("c.sqlite", "mean-reversion")
    assert first != second and first.startswith(expert) and second.startswith(expert)
    assert same_expert == expert == expert_client_id_prefix("trend") != other_expert
