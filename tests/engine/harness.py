"""A small test harness: a real Portfolio + Engine + SimulatedBroker driven bar by bar.

It replays hand-made bars the way ``metaexpert.backtest.runner`` does (match the bar at
its open time, then mark at the close), so fill tests can assert exact prices and fees
without going through files. Events reaching the expert's handlers are recorded in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from metaexpert.core.enums import (
    ContractType,
    IntrabarPath,
    MarginMode,
    MarketType,
    PositionMode,
    TradeMode,
)
from metaexpert.core.market import MarketSpec
from metaexpert.engine.config import StrategyConfig
from metaexpert.engine.engine import Engine
from metaexpert.engine.handlers import HandlerRegistry
from metaexpert.engine.portfolio import Portfolio
from metaexpert.engine.simulated_broker import SimulatedBroker

SYMBOL = "BTCUSDT"
HOUR_MS = 3_600_000
START_MS = 1_700_000_000_000 // HOUR_MS * HOUR_MS


@dataclass
class Harness:
    engine: Engine
    broker: SimulatedBroker
    portfolio: Portfolio
    spec: MarketSpec
    events: list[tuple[str, Any]] = field(default_factory=list)
    bar_index: int = 0

    @property
    def account(self):
        return self.portfolio.account

    def place(self, side: str, quantity: float | None, **options: Any):
        from metaexpert.core.enums import OrderSide

        return self.engine.place(self.spec.symbol, OrderSide(side), quantity, **options)

    def bar(
        self, open_: float, high: float, low: float, close: float, volume: float = 1_000.0
    ) -> int:
        """Replay one bar: match at its open time, then mark the close; returns its open time."""
        timestamp = START_MS + self.bar_index * HOUR_MS
        self.bar_index += 1
        assert low <= min(open_, close) and high >= max(open_, close), "malformed test bar"
        self.portfolio.set_time(timestamp)
        self.broker.process_bar(self.spec.symbol, timestamp, open_, high, low, close, volume)
        self.portfolio.set_time(timestamp + HOUR_MS)
        self.portfolio.mark(self.spec.symbol, close)
        return timestamp

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


def make_harness(
    *,
    market_type: str = "spot",
    contract_type: str | None = None,
    position_mode: str = "oneway",
    margin_mode: str = "isolated",
    leverage: float = 1.0,
    capital: float = 10_000.0,
    maker_fee: float = 0.001,
    taker_fee: float = 0.002,
    maintenance_margin_rate: float = 0.005,
    contract_size: float = 1.0,
    intrabar_path: str = "open_nearest_first",
    fill_market_on: str = "next_open",
    max_volume_participation: float | None = None,
    last_price: float = 100.0,
    record_events: bool = True,
    liquidation: bool = True,
) -> Harness:
    market = MarketType(market_type)
    contract = ContractType(contract_type) if contract_type else None
    inverse = contract is ContractType.INVERSE
    spec = MarketSpec(
        symbol=SYMBOL,
        base="BTC",
        quote="USD" if inverse else "USDT",
        market_type=market,
        contract_type=contract,
        contract_size=contract_size,
        maker_fee=maker_fee,
        taker_fee=taker_fee,
        maintenance_margin_rate=maintenance_margin_rate,
    )
    portfolio = Portfolio(
        currency=spec.settlement_currency,
        initial_capital=capital,
        markets={SYMBOL: spec},
        position_mode=PositionMode(position_mode),
        margin_mode=MarginMode(margin_mode),
        trade_mode=TradeMode.BACKTEST,
        leverage=leverage,
    )
    portfolio.base_timeframe = "1h"
    handlers = HandlerRegistry()
    harness_events: list[tuple[str, Any]] = []
    if record_events:
        for event in ("order", "transaction", "position", "account"):
            handlers.add(event, _recorder(event, harness_events))
    engine = Engine(
        strategy=StrategyConfig(symbols=[SYMBOL], timeframe="1h"),
        portfolio=portfolio,
        handlers=handlers,
    )
    broker = SimulatedBroker(
        portfolio,
        engine,
        intrabar_path=IntrabarPath(intrabar_path),
        fill_market_on=fill_market_on,
        max_volume_participation=max_volume_participation,
        liquidation=liquidation,
    )
    engine.attach(broker, context=None)
    portfolio.set_time(START_MS - HOUR_MS)
    portfolio.mark(SYMBOL, last_price)
    return Harness(engine, broker, portfolio, spec, harness_events)


def _recorder(name: str, sink: list[tuple[str, Any]]):
    def record(context: Any, event: Any) -> None:
        sink.append((name, _snapshot(name, event)))

    record.__name__ = f"record_{name}"
    return record


def _snapshot(name: str, event: Any) -> Any:
    """Copy what matters now: the engine mutates orders/positions after dispatching."""
    if name == "order":
        return (event.order.client_order_id, event.order.status, event.order.tag, event.reason)
    if name == "transaction":
        trade = event.trade
        return (
            trade.client_order_id,
            trade.side,
            trade.quantity,
            trade.price,
            trade.fee,
            trade.liquidity,
        )
    if name == "position":
        return (event.position.side, event.action, event.quantity, event.price, event.realized_pnl)
    return (event.account.balance, event.account.equity)
