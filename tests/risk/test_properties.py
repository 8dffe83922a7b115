"""Property-based tests: random price paths and random strategy actions against the RiskManager.

A scenario is a random configuration (limits, halts, a time filter, sizing, hedge or
one-way) plus a random walk of prices for three symbols and, at every step, random
entries (market or resting limit, sized by us or by the strategy) and random exits.
The fake portfolio books fills through a real PositionLedger and keeps peak and
day-start equity like the engine. After every step the invariants are checked:

- no leg's entry value ever exceeds max_position_size_quote;
- the number of open positions never exceeds max_open_positions / max_positions_per_symbol;
- no entry passes a blocking filter (trade_hours, min_volume, trend_filter,
  volatility_filter) or a halt
  (drawdown, daily loss);
- every allowed quantity respects the market's step, minimum amount, minimum notional
  and maximum amount;
- exits are never blocked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from metaexpert.core import indicators
from metaexpert.core.enums import OrderSide, OrderType, PositionMode, PositionSide
from metaexpert.core.intent import OrderIntent
from metaexpert.core.market import Bar
from metaexpert.core.timeframe import MINUTE_MS
from metaexpert.risk import RiskConfig, RiskManager
from tests.risk.fakes import START_MS, FakePortfolio, linear_market

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
TOLERANCE = 1e-9
MAX_EXAMPLES = 150


def make_markets() -> dict:
    return {
        "BTCUSDT": linear_market(
            "BTCUSDT", amount_step=0.001, min_amount=0.001, min_notional=5.0, max_amount=50.0
        ),
        "ETHUSDT": linear_market(
            "ETHUSDT", amount_step=0.01, min_amount=0.01, min_notional=5.0, max_amount=500.0
        ),
        "SOLUSDT": linear_market(
            "SOLUSDT", amount_step=0.1, min_amount=0.1, min_notional=10.0, max_amount=5_000.0
        ),
    }


configs = st.fixed_dictionaries(
    {},
    optional={
        "max_open_positions": st.integers(1, 4),
        "max_positions_per_symbol": st.integers(1, 2),
        "max_position_size_quote": st.floats(50.0, 5_000.0),
        "max_drawdown_pct": st.floats(1.0, 10.0),
        "daily_loss_limit": st.floats(10.0, 300.0),
        "trade_hours": st.sampled_from(["08:00-20:00", "22:00-04:00", "00:00-12:00"]),
        "size_type": st.sampled_from(["fixed_base", "fixed_quote", "percent_equity", "risk_based"]),
        "size_value": st.floats(0.5, 40.0),
        "leverage": st.sampled_from([1.0, 3.0, 10.0]),
        "stop_loss_pct": st.floats(0.5, 10.0),
        "min_volume": st.floats(1.0, 20.0),
        "trend_filter": st.fixed_dictionaries({"period": st.integers(2, 10)}),
        "volatility_filter": st.fixed_dictionaries(
            {"period": st.integers(2, 6), "max_pct": st.floats(1.0, 6.0)}
        ),
    },
)


actions = st.lists(
    st.tuples(
        st.sampled_from(["entry", "entry", "limit", "exit"]),
        st.integers(0, 2),
        st.sampled_from([OrderSide.BUY, OrderSide.SELL]),
        st.one_of(st.none(), st.floats(0.0001, 100.0)),
    ),
    max_size=4,
)
step = st.fixed_dictionaries(
    {
        "minutes": st.integers(1, 300),
        "returns": st.lists(st.floats(-0.08, 0.08), min_size=3, max_size=3),
        "volume": st.floats(0.0, 30.0),
        "actions": actions,
    }
)
paths = st.lists(step, min_size=5, max_size=40)


@dataclass
class Scenario:
    config: RiskConfig
    view: FakePortfolio
    risk: RiskManager
    halted_by_drawdown: bool = False

    def leg_of(self, side: OrderSide) -> PositionSide:
        return PositionSide.LONG if side is OrderSide.BUY else PositionSide.SHORT

    def position_side(self, side: OrderSide) -> PositionSide | None:
        return self.leg_of(side) if self.view.mode is PositionMode.HEDGE else None


def check_invariants(scenario: Scenario) -> None:
    config, view = scenario.config, scenario.view
    positions = view.positions()
    if config.max_open_positions is not None:
        assert len(positions) <= config.max_open_positions
    if config.max_positions_per_symbol is not None:
        for symbol in SYMBOLS:
            assert len(view.positions(symbol)) <= config.max_positions_per_symbol
    if config.max_position_size_quote is not None:
        for position in positions:
            value = position.quantity * position.entry_price
            assert value <= config.max_position_size_quote * (1 + TOLERANCE), (position, value)


def assert_valid_quantity(quantity: float, symbol: str, price: float, view: FakePortfolio) -> None:
    market = view.market(symbol)
    steps_taken = quantity / market.amount_step
    assert abs(steps_taken - round(steps_taken)) < 1e-6
    assert quantity >= market.min_amount - 1e-12
    assert quantity <= market.max_amount + 1e-12
    assert quantity * price >= market.min_notional * (1 - TOLERANCE)


def fill_resting_orders(scenario: Scenario) -> None:
    view = scenario.view
    for order in list(view.open_orders()):
        price = view.prices[order.symbol]
        crossed = price <= order.price if order.side is OrderSide.BUY else price >= order.price
        if crossed:
            order.apply_fill(order.quantity, order.price, 0.0, "USDT", view.now_ms)
            view.fill(order.symbol, order.side, order.quantity, order.price, order.position_side)
            check_invariants(scenario)


def apply_actions(scenario: Scenario, actions: list) -> None:
    view = scenario.view
    for action in actions:
        if action.kind == "flatten_all":
            for position in list(view.positions()):
                view.fill(
                    position.symbol,
                    position.side.closing_side,
                    position.quantity,
                    view.prices[position.symbol],
                    position.side,
                )
        elif action.kind == "cancel_entries":
            for order in view.open_orders(action.symbol):
                if not order.reduce_only:
                    order.cancel(view.now_ms)


def try_entry(
    scenario: Scenario, kind: str, symbol: str, side: OrderSide, quantity: float | None
) -> None:
    config, view, risk = scenario.config, scenario.view, scenario.risk
    price = view.prices[symbol]
    limit = kind == "limit"
    limit_price = round(price * (0.99 if side is OrderSide.BUY else 1.01), 2) if limit else None
    intent = OrderIntent(
        symbol,
        side,
        OrderType.LIMIT if limit else OrderType.MARKET,
        quantity,
        price,
        view.now_ms,
        price=limit_price,
        position_side=scenario.position_side(side),
    )
    drawdown_pct = (view.peak - view.account.equity) / view.peak * 100.0
    daily_loss = view.day_start - view.account.equity
    if config.max_drawdown_pct is not None and drawdown_pct >= config.max_drawdown_pct:
        scenario.halted_by_drawdown = True
    try:
        decision = risk.check(intent, view)
    except ValueError:
        # risk_based sizing without any stop is refused loudly; only that is acceptable here
        assert (
            config.size_type == "risk_based" and config.stop_loss_pct is None and quantity is None
        )
        return
    event(f"entry {decision.rule or 'allowed'}")
    if not decision.allowed:
        assert decision.quantity == 0.0 and decision.rule
        return
    assert not scenario.halted_by_drawdown, "entry allowed after the drawdown halt"
    if config.daily_loss_limit is not None:
        assert daily_loss < config.daily_loss_limit, "entry allowed beyond the daily loss limit"
    if config.trade_hours is not None:
        # independent of the rule's arithmetic: calendar time of day via datetime
        first, last = (time.fromisoformat(part) for part in config.trade_hours.split("-"))
        now = datetime.fromtimestamp(view.now_ms / 1000, UTC).time()
        inside = first <= now < last if first < last else (now >= first or now < last)
        assert inside, "entry allowed outside trade_hours"
    series = view.bars(symbol)
    if config.min_volume is not None:
        assert float(series.volume[-1]) >= config.min_volume, "entry allowed below min_volume"
    if config.trend_filter is not None:
        average = float(indicators.ema(series.close, config.trend_filter.period)[-1])
        assert not math.isnan(average), "entry allowed before the trend is known"
        if scenario.leg_of(side) is PositionSide.LONG:
            assert price > average, "long entry allowed below the trend average"
        else:
            assert price < average, "short entry allowed above the trend average"
    if config.volatility_filter is not None:
        period = config.volatility_filter.period
        atr = indicators.atr(series.high, series.low, series.close, period)[-1]
        atr_pct = float(atr) / float(series.close[-1]) * 100.0
        assert atr_pct <= config.volatility_filter.max_pct, (
            "entry allowed above the volatility band"
        )
    execution = limit_price if limit else price
    assert_valid_quantity(decision.quantity, symbol, execution, view)
    if quantity is not None:
        assert decision.quantity <= quantity + 1e-12
    if limit:
        view.rest(symbol, side, decision.quantity, limit_price, scenario.position_side(side))
    else:
        view.fill(symbol, side, decision.quantity, price, scenario.position_side(side))
    check_invariants(scenario)


def try_exit(scenario: Scenario, symbol: str) -> None:
    view, risk = scenario.view, scenario.risk
    for position in view.positions(symbol):
        intent = OrderIntent(
            symbol,
            position.side.closing_side,
            OrderType.MARKET,
            None,
            view.prices[symbol],
            view.now_ms,
            position_side=position.side if view.mode is PositionMode.HEDGE else None,
            reduce_only=True,
            opens_exposure=False,
        )
        decision = risk.check(intent, view)
        assert decision.allowed, "an exit was blocked"
        assert math.isclose(decision.quantity, position.quantity)
        view.fill(symbol, intent.side, decision.quantity, view.prices[symbol], intent.position_side)
        check_invariants(scenario)


@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(options=configs, hedge=st.booleans(), path=paths)
def test_risk_manager_with_random_paths_and_actions_never_breaks_a_limit(
    options: dict, hedge: bool, path: list
) -> None:
    """150 generated scenarios (settings(max_examples=150)), each 5-40 steps of 0-4 actions on 3 symbols."""
    config = RiskConfig(**options)
    view = FakePortfolio(
        make_markets(),
        capital=10_000.0,
        mode=PositionMode.HEDGE if hedge else PositionMode.ONEWAY,
        clock_ms=START_MS,
    )
    scenario = Scenario(config, view, RiskManager(config))
    prices = {"BTCUSDT": 40_000.0, "ETHUSDT": 2_500.0, "SOLUSDT": 100.0}
    for symbol, price in prices.items():
        view.mark(symbol, price)
    for step in path:
        view.set_time(view.now_ms + step["minutes"] * MINUTE_MS)
        for symbol, change in zip(SYMBOLS, step["returns"]):
            previous = prices[symbol]
            prices[symbol] = max(previous * (1 + change), 0.01)
            view.mark(symbol, prices[symbol])
            bar = Bar(
                symbol,
                "1h",
                view.now_ms - 1,
                previous,
                max(previous, prices[symbol]),
                min(previous, prices[symbol]),
                prices[symbol],
                step["volume"],
            )
            view.bars(symbol).append(bar)
            apply_actions(scenario, scenario.risk.on_bar(bar, view))
        fill_resting_orders(scenario)
        for kind, index, side, quantity in step["actions"]:
            symbol = SYMBOLS[index]
            if kind == "exit":
                try_exit(scenario, symbol)
            else:
                try_entry(scenario, kind, symbol, side, quantity)
        check_invariants(scenario)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(
    size_type=st.sampled_from(["fixed_base", "fixed_quote", "percent_equity", "risk_based"]),
    size_value=st.floats(0.01, 100.0),
    price=st.floats(0.01, 200_000.0),
    equity=st.floats(0.0, 1e7),
    leverage=st.floats(1.0, 100.0),
    step=st.sampled_from([0.0, 0.001, 0.01, 1.0]),
    min_notional=st.floats(0.0, 100.0),
    max_amount=st.floats(0.01, 1e6),
    cap=st.one_of(st.none(), st.floats(1.0, 1e6)),
    stop_pct=st.floats(0.1, 50.0),
)
def test_sizing_with_random_markets_respects_caps_and_market_limits(
    size_type: str,
    size_value: float,
    price: float,
    equity: float,
    leverage: float,
    step: float,
    min_notional: float,
    max_amount: float,
    cap: float | None,
    stop_pct: float,
) -> None:
    """150 generated sizing cases (settings(max_examples=150)): the result is 0 or a valid, capped amount."""
    market = linear_market(
        amount_step=step,
        min_amount=step,
        min_notional=min_notional,
        max_amount=max_amount,
        max_leverage=125.0,
    )
    view = FakePortfolio({"BTCUSDT": market}, capital=equity)
    config = RiskConfig(
        size_type=size_type,
        size_value=size_value,
        leverage=leverage,
        stop_loss_pct=stop_pct,
        max_position_size_quote=cap,
    )
    quantity = RiskManager(config).size(
        OrderIntent("BTCUSDT", OrderSide.BUY, OrderType.MARKET, None, price, START_MS), view
    )
    assert quantity >= 0.0 and math.isfinite(quantity)
    if quantity == 0.0:
        return
    assert quantity <= max_amount * (1 + 1e-12)
    assert quantity >= market.min_amount
    assert quantity * price >= min_notional * (1 - TOLERANCE)
    if step:
        assert abs(quantity / step - round(quantity / step)) < 1e-6
    if cap is not None:
        assert quantity * price <= cap * (1 + TOLERANCE)
    if size_type == "percent_equity":
        assert quantity * price <= equity * size_value / 100 * leverage * (1 + TOLERANCE)
    if size_type == "risk_based":
        assert quantity * price * stop_pct / 100 <= equity * size_value / 100 * (1 + 1e-6)
