"""The order vocabulary: one leg rule everywhere, typed requests, risk action kinds, option errors."""

from __future__ import annotations

import itertools

import pytest

from metaexpert.core.enums import OrderSide, OrderType, PositionSide, RiskActionKind
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.intent import OrderRequest, RiskAction
from metaexpert.core.order import Order, position_leg
from metaexpert.exchanges import ExchangeConfig
from metaexpert.exchanges.venues import binance, bybit, okx

CASES = list(
    itertools.product(OrderSide, (False, True), (None, PositionSide.LONG, PositionSide.SHORT))
)


@pytest.mark.parametrize(("side", "reduce_only", "explicit"), CASES)
def test_position_leg_with_every_side_and_flag_matches_each_hedge_venue(
    side, reduce_only, explicit
):
    leg = position_leg(side, reduce_only, explicit)
    if explicit is not None:
        assert leg is explicit
    else:  # a buy opens a long, a reduce-only buy closes a short, and the mirror for sells
        assert leg is (
            PositionSide.LONG if (side is OrderSide.BUY) != reduce_only else PositionSide.SHORT
        )
    order = Order(
        "BTCUSDT",
        side,
        OrderType.MARKET,
        1.0,
        position_side=explicit,
        reduce_only=reduce_only,
        client_order_id="me-leg-1",
    )
    venues = {
        binance: lambda params: params["positionSide"].lower(),
        bybit: lambda params: {1: "long", 2: "short"}[params["positionIdx"]],
        okx: lambda params: params["posSide"],
    }
    for venue, read in venues.items():
        config = ExchangeConfig.parse(
            exchange=venue.EXCHANGE.value,
            market_type="futures",
            position_mode="hedge",
            margin_mode="isolated",
        )
        assert read(venue.order_params(order, config)) == leg.value, venue.EXCHANGE


def test_order_request_with_prices_resolves_each_order_type():
    assert OrderRequest("X", OrderSide.BUY).resolved_type() is OrderType.MARKET
    assert OrderRequest("X", OrderSide.BUY, price=1.0).resolved_type() is OrderType.LIMIT
    assert OrderRequest("X", OrderSide.BUY, stop_price=1.0).resolved_type() is OrderType.STOP_MARKET
    assert (
        OrderRequest("X", OrderSide.BUY, price=1.0, stop_price=1.1).resolved_type()
        is OrderType.STOP_LIMIT
    )
    assert (
        OrderRequest("X", OrderSide.SELL, trailing_pct=1.0).resolved_type()
        is OrderType.TRAILING_STOP
    )
    assert (
        OrderRequest(
            "X", OrderSide.SELL, price=1.0, order_type=OrderType.TAKE_PROFIT_LIMIT
        ).resolved_type()
        is OrderType.TAKE_PROFIT_LIMIT
    )


def test_risk_action_with_kind_name_becomes_enum_and_unknown_kind_fails_where_made():
    assert RiskAction("flatten_all", "rule", "why").kind is RiskActionKind.FLATTEN_ALL
    with pytest.raises(ValueError, match="flatten_everything"):
        RiskAction("flatten_everything", "rule", "why")


def test_ctx_buy_with_misspelt_option_raises_configuration_error_naming_it():
    from metaexpert.core.enums import TradeMode
    from metaexpert.engine.context import Context
    from tests.engine.harness import make_harness

    harness = make_harness()
    ctx = Context(harness.engine, trade_mode=TradeMode.BACKTEST)
    with pytest.raises(ConfigurationError, match=r"unknown option\(s\) \['stop_los'\].*stop_loss"):
        ctx.buy(1.0, stop_los=100.0)
    assert harness.engine.orders == [], "nothing is placed"
