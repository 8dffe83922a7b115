"""Account halts in the replay: observed only where they can act, with the same outcome as every bar.

The drawdown and daily-loss halts give the replay an equity floor (``RiskRule.equity_floor``);
the replay observes them on the bars whose equity reaches it, when the peak moves or the UTC
day changes. The reference run forces the every-bar path (as before this existed, and as in
paper and live mode) and must produce identical trades, risk events and equity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from metaexpert.backtest.runner import BacktestConfig, run_backtest
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.events import RiskEvent
from metaexpert.data import CandleStore
from metaexpert.engine.config import SimulationConfig, StrategyConfig
from metaexpert.engine.handlers import HandlerRegistry
from metaexpert.engine.wiring import RunParts
from metaexpert.risk import RiskConfig, RiskManager
from metaexpert.risk.halts import DailyLossHalt, MaxDrawdownHalt

HOUR = 3_600_000
START = parse_date_ms("2024-01-01")
BARS = 24 * 40


class EveryBarRiskManager:
    """The reference: a RiskManager whose rules are all observed on every bar (as before, and
    as in paper and live mode). It wraps instead of subclassing: RiskManager is compiled."""

    watches_every_bar = True

    def __init__(self, config: RiskConfig) -> None:
        self._manager = RiskManager(config)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)


def _store(root) -> None:
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.012, BARS)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    frame = pl.DataFrame(
        {
            "timestamp": START + np.arange(BARS, dtype=np.int64) * HOUR,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": np.full(BARS, 50.0),
        }
    )
    CandleStore(root).write("binance", "spot", "BTCUSDT", "1h", frame)


def _handlers() -> HandlerRegistry:
    handlers = HandlerRegistry()

    def bar(ctx, bars):
        index = len(bars)
        if index % 7 == 0 and ctx.position() is None:
            ctx.buy()
        elif index % 7 == 4 and ctx.position() is not None:
            ctx.close()

    handlers.add_bar("1h", bar)
    return handlers


def _run(root, manager: type, **risk: Any):
    config = BacktestConfig(
        start_ms=START,
        end_ms=START + BARS * HOUR,
        initial_capital=10_000.0,
        data_dir=root,
        simulation=SimulationConfig(taker_fee=0.001, maker_fee=0.001),
    )
    strategy = StrategyConfig(symbols="BTCUSDT", timeframe="1h", lookback_bars=0)
    risk_config = RiskConfig(size_type="percent_equity", size_value=90.0, **risk)
    events: list[RiskEvent] = []
    parts = RunParts(
        risk=manager(risk_config),
        observers=[lambda event: events.append(event) if isinstance(event, RiskEvent) else None],
    )
    result = run_backtest(handlers=_handlers(), strategy=strategy, config=config, parts=parts)
    return result, [(e.rule, e.action, e.timestamp, e.reason) for e in events]


def _count_observations(monkeypatch: pytest.MonkeyPatch, rule: type) -> list[int]:
    calls: list[int] = []
    original = rule.observe

    def counted(self, view, journal):
        calls.append(view.now_ms)
        return original(self, view, journal)

    monkeypatch.setattr(rule, "observe", counted)
    return calls


@pytest.mark.parametrize(
    "risk",
    [
        {"max_drawdown_pct": 8.0},
        {"max_drawdown_pct": 8.0, "flatten_on_max_drawdown": True},
        {"daily_loss_limit": 150.0},
        {
            "max_drawdown_pct": 12.0,
            "daily_loss_limit": 120.0,
            "stop_loss_pct": 1.5,
            "trailing_stop_pct": 2.0,
        },
    ],
)
def test_replay_with_equity_halts_gives_the_same_trades_events_and_equity_as_every_bar(
    tmp_path, risk
):
    _store(tmp_path)
    fast, fast_events = _run(tmp_path, RiskManager, **risk)
    slow, slow_events = _run(tmp_path, EveryBarRiskManager, **risk)
    assert any(
        action == "halted" for _, action, _, _ in slow_events
    )  # the halt does fire in this data
    assert fast_events == slow_events
    assert [
        (t.entry_time, t.exit_time, t.quantity, t.pnl, t.exit_reason) for t in fast.closed_trades
    ] == [(t.entry_time, t.exit_time, t.quantity, t.pnl, t.exit_reason) for t in slow.closed_trades]
    assert np.array_equal(fast.equity, slow.equity)
    assert fast.risk_counts == slow.risk_counts


def test_replay_with_drawdown_limit_observes_it_on_few_bars_not_every_bar(tmp_path, monkeypatch):
    _store(tmp_path)
    calls = _count_observations(monkeypatch, MaxDrawdownHalt)
    result, events = _run(tmp_path, RiskManager, max_drawdown_pct=95.0)  # never reached here
    decisions = len(result.orders)
    assert not any(action == "halted" for _, action, _, _ in events)
    # Once per order decision and twice per UTC day (the day's first close and first open), not once per bar.
    assert len(calls) <= decisions + 2 * 40 + 1
    assert len(calls) < BARS // 2


def test_replay_with_daily_loss_limit_observes_at_day_starts_and_decisions_only(
    tmp_path, monkeypatch
):
    _store(tmp_path)
    calls = _count_observations(monkeypatch, DailyLossHalt)
    result, _ = _run(tmp_path, RiskManager, daily_loss_limit=5_000.0)
    assert len(calls) <= len(result.orders) + 2 * 40 + 1
