"""One jurisdiction rule blocks the same order in backtest, paper and live mode."""

from __future__ import annotations

import asyncio

import pytest

from metaexpert import MetaExpert
from metaexpert.core.enums import OrderStatus, TradeMode
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.events import RiskEvent
from metaexpert.engine.runtime import TradingRuntime
from metaexpert.engine.wiring import RunParts
from metaexpert.exchanges import CcxtGateway
from metaexpert.risk import RiskManager
from tests.compliance.conftest import KEY, SECRET

# 0.001 BTC is worth about 60-120 USDT in the recorded data; 0.01 BTC is worth 600-1,200.
RULES = {
    "jurisdiction": "US",
    "compliance_config": {"jurisdictions": {"US": {"max_order_notional": 500}}},
}


def _strategy(expert: MetaExpert, decisions: list, orders: list) -> None:
    bars_seen: list[int] = []

    @expert.on_init(
        symbol="BTCUSDT",
        timeframe=expert._timeframe,
        lookback_bars=5,
        size_type="fixed_base",
        size_value=0.001,
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe=expert._timeframe)
    def bar(ctx, bars):
        bars_seen.append(bars.last.timestamp)
        if len(bars_seen) == 1:
            ctx.buy(0.001)  # small enough: allowed
        elif len(bars_seen) == 2:
            ctx.buy(0.01)  # above the notional limit: blocked by compliance
        elif len(bars_seen) == 3:
            ctx.close()

    @expert.on_risk()
    def risk(ctx, event: RiskEvent):
        decisions.append((event.rule, event.action))

    @expert.on_order()
    def order(ctx, event):
        if event.order.status is OrderStatus.REJECTED:
            orders.append(event.order)


def _assert_blocked(decisions: list, rejected: list) -> None:
    assert ("compliance:max_order_notional", "blocked") in decisions
    assert ("compliance:gate", "approved") in decisions, "the allowed entry is recorded as approved"
    assert len(rejected) == 1
    assert rejected[0].quantity == pytest.approx(0.01)
    assert rejected[0].reject_reason.startswith(
        "risk rule compliance:max_order_notional: order notional"
    )


def test_jurisdiction_rule_with_backtest_blocks_large_order():
    expert = MetaExpert(
        exchange="binance", market_type="spot", log_to_file=False, log_to_console=False, **RULES
    )
    expert._timeframe = "1h"
    decisions: list = []
    rejected: list = []
    _strategy(expert, decisions, rejected)
    result = expert.run(
        "backtest",
        backtest_start="2024-03-01",
        backtest_end="2024-03-02",
        report=False,
        configure_logs=False,
    )
    _assert_blocked(decisions, rejected)
    assert [o.status for o in result.orders if o.status is OrderStatus.FILLED] == [
        OrderStatus.FILLED
    ] * 2


async def _drive(
    expert: MetaExpert, sandbox, mode: TradeMode, steps: int, observers: list | None = None
) -> TradingRuntime:
    strategy, risk = expert.strategy_config(expert._init_options)
    gateway = CcxtGateway(expert.exchange_config(mode))
    runtime = TradingRuntime(
        handlers=expert.handlers,
        strategy=strategy,
        gateway=gateway,
        trade_mode=mode,
        parts=RunParts(
            risk=RiskManager(risk), compliance=expert.compliance_gate(), observers=observers or []
        ),
        market_type=expert.config.market_type,
        position_mode=expert.config.position_mode,
        margin_mode=expert.config.margin_mode
        if expert.config.market_type.value != "spot"
        else None,
    )
    try:
        await runtime.start()
        for _ in range(steps):
            sandbox.advance(1)
            await runtime.step()
    finally:
        await gateway.close()
    return runtime


@pytest.mark.network
@pytest.mark.parametrize(
    ("mode", "market_type"), [(TradeMode.PAPER, "spot"), (TradeMode.LIVE, "futures")]
)
def test_jurisdiction_rule_with_sandbox_blocks_large_order(sandbox, mode, market_type):
    settings = {"market_type": market_type, **RULES}
    if mode is TradeMode.LIVE:
        settings.update(api_key=KEY, api_secret=SECRET, contract_type="linear")
    expert = MetaExpert(
        exchange="binance",
        base_url=f"http://{sandbox.host}:{sandbox.port}",
        log_to_file=False,
        log_to_console=False,
        **settings,
    )
    expert._timeframe = "1m"
    decisions: list = []
    rejected: list = []
    _strategy(expert, decisions, rejected)
    fills_before = len(sandbox.ledger()["fills"])
    runtime = asyncio.run(_drive(expert, sandbox, mode, steps=5))
    _assert_blocked(decisions, rejected)
    venue_fills = len(sandbox.ledger()["fills"]) - fills_before
    assert venue_fills == (2 if mode is TradeMode.LIVE else 0), (
        "the blocked order never reached the venue"
    )
    assert runtime.engine.risk_counts.get("compliance:max_order_notional") == 1


def test_facade_with_jurisdiction_but_no_rule_sets_raises():
    with pytest.raises(ConfigurationError, match="jurisdiction needs compliance_config"):
        MetaExpert(jurisdiction="US")


def test_facade_with_unknown_jurisdiction_raises():
    with pytest.raises(ConfigurationError, match="'EU' has no rule set"):
        MetaExpert(jurisdiction="EU", compliance_config={"jurisdictions": {"US": {}}})
