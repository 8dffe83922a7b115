"""Sizing: each size type, caps, market minimums and rounding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metaexpert.core.enums import OrderSide, OrderType, PositionSide
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.intent import OrderIntent
from metaexpert.risk import RiskConfig, RiskManager
from tests.risk.fakes import (
    START_MS,
    FakePortfolio,
    entry,
    inverse_market,
    linear_market,
    series_from_closes,
    spot_market,
)


def manager(**options: object) -> RiskManager:
    return RiskManager(RiskConfig(**options))


def test_sizing_with_fixed_base_returns_the_amount() -> None:
    view = FakePortfolio({"BTCUSDT": spot_market()})
    assert manager(size_type="fixed_base", size_value=0.5).size(entry(), view) == 0.5


def test_sizing_with_fixed_quote_divides_by_price() -> None:
    view = FakePortfolio({"BTCUSDT": spot_market()})
    assert manager(size_type="fixed_quote", size_value=250).size(entry(price=100.0), view) == 2.5


def test_sizing_with_percent_equity_on_spot_ignores_leverage() -> None:
    view = FakePortfolio({"BTCUSDT": spot_market()}, capital=10_000)
    risk = manager(size_type="percent_equity", size_value=10)
    assert risk.size(entry(price=100.0), view) == 10.0


def test_sizing_with_percent_equity_on_futures_multiplies_by_leverage() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    risk = manager(size_type="percent_equity", size_value=10, leverage=5)
    assert risk.size(entry(price=100.0), view) == 50.0


def test_sizing_with_intent_leverage_uses_it_over_config() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    risk = manager(size_type="percent_equity", size_value=10, leverage=5)
    assert risk.size(entry(price=100.0, leverage=2.0), view) == 20.0


def test_sizing_with_risk_based_and_stop_pct_risks_the_percentage() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    risk = manager(size_type="risk_based", size_value=1.0, stop_loss_pct=2.0)
    quantity = risk.size(entry(price=100.0), view)
    # lose 1% of 10 000 = 100 over a 2-unit stop distance -> 50 units
    assert quantity == 50.0


def test_sizing_with_risk_based_and_stop_price_uses_the_price() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    risk = manager(size_type="risk_based", size_value=1.0, stop_loss_pct=2.0)
    quantity = risk.size(entry(side=OrderSide.SELL, price=100.0, stop_loss_price=104.0), view)
    assert quantity == 25.0


def test_sizing_with_risk_based_and_no_stop_raises_clear_error() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    with pytest.raises(ConfigurationError, match="risk_based needs a stop"):
        manager(size_type="risk_based", size_value=1.0).size(entry(), view)


def test_sizing_with_stop_on_wrong_side_raises_clear_error() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    with pytest.raises(ValueError, match="wrong side"):
        manager(size_type="risk_based", size_value=1.0).size(
            entry(price=100.0, stop_loss_price=101.0), view
        )


def test_sizing_with_inverse_contract_counts_contracts_of_usd() -> None:
    view = FakePortfolio({"BTCUSD": inverse_market()}, capital=1.0)  # 1 BTC of equity
    risk = manager(size_type="percent_equity", size_value=50, leverage=2)
    # 1 BTC * 20 000 USD * 50% * 2x = 20 000 USD = 200 contracts of 100 USD
    assert risk.size(entry("BTCUSD", price=20_000.0), view) == 200.0


def test_sizing_with_inverse_risk_based_loses_the_percentage_at_the_stop() -> None:
    market = inverse_market(amount_step=0.0, min_amount=0.0)
    view = FakePortfolio({"BTCUSD": market}, capital=1.0)
    risk = manager(size_type="risk_based", size_value=2.0, stop_loss_pct=5.0)
    quantity = risk.size(entry("BTCUSD", price=20_000.0), view)
    loss = quantity * 100.0 * (1 / 19_000.0 - 1 / 20_000.0)
    assert math.isclose(loss, 0.02, rel_tol=1e-9)


def test_sizing_with_fractional_result_rounds_down_to_step() -> None:
    view = FakePortfolio({"BTCUSDT": spot_market(amount_step=0.01)})
    assert manager(size_type="fixed_quote", size_value=100).size(entry(price=30.0), view) == 3.33


def test_sizing_with_result_below_min_amount_returns_zero() -> None:
    view = FakePortfolio({"BTCUSDT": spot_market(min_amount=1.0, min_notional=0.0)})
    assert manager(size_type="fixed_quote", size_value=50).size(entry(price=100.0), view) == 0.0


def test_sizing_with_result_below_min_notional_returns_zero_and_check_blocks() -> None:
    view = FakePortfolio({"BTCUSDT": spot_market(min_notional=10.0)})
    risk = manager(size_type="fixed_quote", size_value=9.0)
    assert risk.size(entry(price=100.0), view) == 0.0
    decision = risk.check(entry(price=100.0), view)
    assert (
        not decision.allowed and decision.rule == "sizing" and "minimum notional" in decision.reason
    )
    assert risk.counts == {"sizing": 1}


def test_sizing_with_max_amount_caps_the_quantity() -> None:
    view = FakePortfolio({"BTCUSDT": spot_market(max_amount=3.0)})
    assert manager(size_type="fixed_base", size_value=5.0).size(entry(), view) == 3.0


def test_sizing_with_position_cap_limits_to_the_remaining_room() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    view.fill("BTCUSDT", OrderSide.BUY, 4.0, 100.0)
    risk = manager(size_type="fixed_quote", size_value=5_000, max_position_size_quote=1_000)
    assert risk.size(entry(price=100.0), view) == 6.0


def test_sizing_with_limit_order_uses_the_limit_price() -> None:
    view = FakePortfolio({"BTCUSDT": spot_market()})
    intent = OrderIntent(
        "BTCUSDT", OrderSide.BUY, OrderType.LIMIT, None, 100.0, START_MS, price=50.0
    )
    assert manager(size_type="fixed_quote", size_value=100).size(intent, view) == 2.0


def test_sizing_with_zero_equity_returns_zero() -> None:
    view = FakePortfolio({"BTCUSDT": spot_market()}, capital=0.0)
    assert manager(size_type="percent_equity", size_value=10).size(entry(), view) == 0.0


def test_volatility_sizing_with_calm_market_scales_up_to_the_cap() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    view.series[("BTCUSDT", "1h")] = series_from_closes("BTCUSDT", np.full(40, 100.0), spread=0.001)
    risk = manager(
        size_type="fixed_base",
        size_value=1.0,
        volatility_sizing={"target_pct": 2.0, "period": 14, "max_scale": 3.0},
    )
    # ATR is 0.2% of price: 2 / 0.2 = 10, clipped to 3
    assert risk.size(entry(price=100.0), view) == 3.0


def test_volatility_sizing_with_wild_market_scales_down() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    closes = 100.0 * np.where(np.arange(60) % 2 == 0, 1.0, 1.04)
    view.series[("BTCUSDT", "1h")] = series_from_closes("BTCUSDT", closes, spread=0.0)
    risk = manager(
        size_type="fixed_base",
        size_value=1.0,
        volatility_sizing={"target_pct": 1.0, "period": 14, "min_scale": 0.1},
    )
    quantity = risk.size(entry(price=100.0), view)
    assert 0.2 < quantity < 0.3  # ATR ~ 4 on a price of 100-104


def test_volatility_sizing_with_short_history_keeps_the_base_size() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    view.series[("BTCUSDT", "1h")] = series_from_closes("BTCUSDT", [100.0, 101.0, 99.0])
    risk = manager(size_type="fixed_base", size_value=1.0, volatility_sizing={"target_pct": 1.0})
    assert risk.size(entry(price=100.0), view) == 1.0


def test_sizing_with_explicit_quantity_rounds_down_and_reports_resize() -> None:
    view = FakePortfolio({"BTCUSDT": spot_market(amount_step=0.01)})
    events = []
    risk = RiskManager(RiskConfig(), emit=events.append)
    decision = risk.check(entry(quantity=1.2345, position_side=PositionSide.LONG), view)
    assert decision.allowed and decision.quantity == 1.23
    assert [event.action for event in decision.events] == ["resized"]
    assert events == decision.events


# Issue 15: fixed_base counted contracts, so on OKX BTC-USDT-SWAP (ctVal 0.01 BTC) size_value=0.01
# meant 0.01 contracts (0.0001 BTC, rounded to nothing) instead of 0.01 BTC = 1 contract.
def test_sizing_with_fixed_base_on_linear_contract_size_counts_base_coin() -> None:
    market = linear_market(contract_size=0.01, amount_step=1.0, min_amount=1.0, min_notional=0.0)
    view = FakePortfolio({"BTCUSDT": market}, capital=100_000)
    assert manager(size_type="fixed_base", size_value=0.01).size(entry(), view) == 1.0
    assert manager(size_type="fixed_base", size_value=0.05).size(entry(), view) == 5.0


def test_sizing_with_fixed_base_on_inverse_contract_raises_naming_fixed_quote() -> None:
    view = FakePortfolio({"BTCUSD": inverse_market()}, capital=1.0)
    with pytest.raises(ConfigurationError, match="fixed_base.*inverse.*fixed_quote"):
        manager(size_type="fixed_base", size_value=0.01).size(entry("BTCUSD"), view)
