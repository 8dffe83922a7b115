"""A small in-test PortfolioView driven by the tests, built on real core objects.

It holds a real ``Account``, a real ``PositionLedger`` (hedge or one-way netting), real
``Order`` objects for resting orders and real ``BarSeries``. Fills go through the
ledger, equity is recomputed from the positions, and peak / day-start equity are kept
the way the engine keeps them, so rules see exactly what they would see in the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from metaexpert.core.account import Account
from metaexpert.core.enums import (
    ContractType,
    MarketType,
    OrderSide,
    OrderType,
    PositionMode,
    PositionSide,
    TradeMode,
)
from metaexpert.core.intent import OrderIntent
from metaexpert.core.market import Bar, MarketSpec, OrderBook
from metaexpert.core.order import Order
from metaexpert.core.position import Position, PositionLedger
from metaexpert.core.series import BarSeries
from metaexpert.core.timeframe import DAY_MS, HOUR_MS

START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a Monday


def spot_market(symbol: str = "BTCUSDT", **overrides: float) -> MarketSpec:
    values = {"amount_step": 0.001, "min_amount": 0.001, "min_notional": 5.0, "max_amount": 1_000.0}
    values.update(overrides)
    return MarketSpec(symbol, symbol[:-4], "USDT", MarketType.SPOT, **values)


def linear_market(symbol: str = "BTCUSDT", **overrides: float) -> MarketSpec:
    values = {
        "amount_step": 0.001,
        "min_amount": 0.001,
        "min_notional": 5.0,
        "max_amount": 1_000.0,
        "max_leverage": 20.0,
    }
    values.update(overrides)
    return MarketSpec(
        symbol, symbol[:-4], "USDT", MarketType.FUTURES, ContractType.LINEAR, **values
    )


def inverse_market(symbol: str = "BTCUSD", **overrides: float) -> MarketSpec:
    values = {"amount_step": 1.0, "min_amount": 1.0, "contract_size": 100.0, "max_leverage": 20.0}
    values.update(overrides)
    return MarketSpec(
        symbol, "BTC", "USD", MarketType.FUTURES, ContractType.INVERSE, settle="BTC", **values
    )


@dataclass
class FakePortfolio:
    """PortfolioView for tests: settable clock, prices, books; fills through a real ledger."""

    markets: dict[str, MarketSpec]
    capital: float = 10_000.0
    mode: PositionMode = PositionMode.ONEWAY
    timeframe: str = "1h"
    clock_ms: int = START_MS
    trade_mode: TradeMode = TradeMode.BACKTEST
    prices: dict[str, float] = field(default_factory=dict)
    books: dict[str, OrderBook] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    series: dict[tuple[str, str], BarSeries] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.account = Account(currency="USDT", balance=self.capital)
        self.ledger = PositionLedger(position_mode=self.mode)
        self.peak = self.capital
        self.day = self.clock_ms // DAY_MS
        self.day_start = self.capital

    # ---------------------------------------------------------------- PortfolioView
    @property
    def now_ms(self) -> int:
        return self.clock_ms

    @property
    def position_mode(self) -> PositionMode:
        return self.mode

    @property
    def peak_equity(self) -> float:
        return self.peak

    @property
    def day_start_equity(self) -> float:
        return self.day_start

    def positions(self, symbol: str | None = None) -> list[Position]:
        return self.ledger.open_positions(symbol)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders if o.is_open and (symbol is None or o.symbol == symbol)]

    def market(self, symbol: str) -> MarketSpec:
        return self.markets[symbol]

    def last_price(self, symbol: str) -> float:
        return self.prices.get(symbol, 0.0)

    def bars(self, symbol: str, timeframe: str | None = None) -> BarSeries:
        key = (symbol, timeframe or self.timeframe)
        if key not in self.series:
            self.series[key] = BarSeries(symbol, key[1])
        return self.series[key]

    def order_book(self, symbol: str) -> OrderBook | None:
        return self.books.get(symbol)

    # ---------------------------------------------------------------- driving it
    def set_time(self, timestamp_ms: int) -> None:
        self.clock_ms = timestamp_ms
        day = timestamp_ms // DAY_MS
        if day != self.day:
            self.day = day
            self.day_start = self.account.equity

    def mark(self, symbol: str, price: float) -> None:
        self.prices[symbol] = price
        self.revalue()

    def revalue(self) -> None:
        unrealized = 0.0
        for position in self.ledger.open_positions():
            position.mark_price = self.prices.get(position.symbol, position.entry_price)
            unrealized += position.pnl_at(position.mark_price)
        self.account.unrealized_pnl = unrealized
        self.account.equity = self.account.balance + unrealized
        self.peak = max(self.peak, self.account.equity)

    def fill(
        self,
        symbol: str,
        side: OrderSide,
        quantity: float,
        price: float,
        position_side: PositionSide | None = None,
    ) -> None:
        """Book a fill (futures-style accounting: realised PnL goes to the wallet)."""
        market = self.markets[symbol]
        template = Position(
            symbol, PositionSide.LONG, inverse=market.is_inverse, contract_size=market.contract_size
        )
        if self.mode is PositionMode.HEDGE and position_side is None:
            position_side = PositionSide.LONG if side is OrderSide.BUY else PositionSide.SHORT
        changes = self.ledger.apply_fill(
            symbol,
            side,
            quantity,
            price,
            self.clock_ms,
            position_side=position_side if self.mode is PositionMode.HEDGE else None,
            template=template,
        )
        self.account.balance += sum(change.realized_pnl for change in changes)
        self.prices.setdefault(symbol, price)
        self.revalue()

    def rest(
        self,
        symbol: str,
        side: OrderSide,
        quantity: float,
        price: float,
        position_side: PositionSide | None = None,
        reduce_only: bool = False,
    ) -> Order:
        order = Order(
            symbol,
            side,
            OrderType.LIMIT,
            quantity,
            price=price,
            position_side=position_side,
            reduce_only=reduce_only,
        )
        order.submit(self.clock_ms)
        self.orders.append(order)
        return order

    def add_bar(
        self,
        symbol: str,
        open_: float,
        high: float,
        low: float,
        close: float,
        volume: float = 100.0,
        timeframe: str | None = None,
    ) -> Bar:
        series = self.bars(symbol, timeframe)
        length = len(series)
        timestamp = (int(series.timestamps[-1]) + HOUR_MS) if length else self.clock_ms - HOUR_MS
        bar = Bar(symbol, series.timeframe, timestamp, open_, high, low, close, volume)
        series.append(bar)
        self.set_time(max(self.clock_ms, timestamp + HOUR_MS))
        self.mark(symbol, close)
        return bar


def series_from_closes(
    symbol: str,
    closes: list[float] | np.ndarray,
    timeframe: str = "1h",
    spread: float = 0.002,
    start_ms: int = START_MS,
) -> BarSeries:
    """A BarSeries whose bars close at ``closes`` with highs/lows ``spread`` around them."""
    closes = np.asarray(closes, dtype=np.float64)
    opens = np.concatenate(([closes[0]], closes[:-1]))
    highs = np.maximum(opens, closes) * (1 + spread)
    lows = np.minimum(opens, closes) * (1 - spread)
    timestamps = start_ms + np.arange(closes.shape[0], dtype=np.int64) * HOUR_MS
    volume = np.full(closes.shape[0], 100.0)
    return BarSeries(
        symbol, timeframe, timestamps, opens, highs, lows, closes, volume, visible=closes.shape[0]
    )


def entry(
    symbol: str = "BTCUSDT",
    side: OrderSide = OrderSide.BUY,
    quantity: float | None = None,
    price: float = 100.0,
    timestamp: int = START_MS,
    **extra: object,
) -> OrderIntent:
    return OrderIntent(symbol, side, OrderType.MARKET, quantity, price, timestamp, **extra)


def exit_intent(
    symbol: str = "BTCUSDT",
    side: OrderSide = OrderSide.SELL,
    quantity: float | None = None,
    price: float = 100.0,
    timestamp: int = START_MS,
    **extra: object,
) -> OrderIntent:
    return OrderIntent(
        symbol,
        side,
        OrderType.MARKET,
        quantity,
        price,
        timestamp,
        reduce_only=True,
        opens_exposure=False,
        **extra,
    )


def book(
    symbol: str, bid: float, ask: float, depth: float = 10.0, levels: int = 5, step: float = 0.1
) -> OrderBook:
    bids = [(bid - i * step, depth) for i in range(levels)]
    asks = [(ask + i * step, depth) for i in range(levels)]
    return OrderBook(symbol, START_MS, bids, asks)


class RecordingNotifier:
    """A Notifier that keeps what it was asked to send."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str, str, tuple[str, ...]]] = []
        self.fail = fail

    def notify(
        self, title: str, body: str, *, level: str = "info", tags: tuple[str, ...] = ()
    ) -> bool:
        if self.fail:
            raise ConnectionError("alert endpoint down")
        self.sent.append((title, body, level, tags))
        return True


def isclose(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
