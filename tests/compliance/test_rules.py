"""Each jurisdiction rule on its own, and the gate's decisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from metaexpert.compliance import ComplianceConfig, ComplianceGate, JurisdictionRules
from metaexpert.core.enums import OrderSide, OrderType
from metaexpert.core.intent import OrderIntent
from metaexpert.core.market import MarketSpec

NOON = int(datetime(2024, 3, 5, 12, 0, tzinfo=UTC).timestamp() * 1000)
EVENING = int(datetime(2024, 3, 5, 21, 0, tzinfo=UTC).timestamp() * 1000)


class View:
    """Only what the rules read: the market spec."""

    def market(self, symbol: str) -> MarketSpec:
        return MarketSpec(symbol=symbol, base="BTC", quote="USDT")


def _intent(
    quantity: float = 0.1,
    price: float = 50_000.0,
    *,
    timestamp: int = NOON,
    leverage: float = 1.0,
    symbol: str = "BTCUSDT",
    opens: bool = True,
) -> OrderIntent:
    return OrderIntent(
        symbol=symbol,
        side=OrderSide.BUY,
        order_type=OrderType.MARKET,
        quantity=quantity,
        reference_price=price,
        timestamp=timestamp,
        leverage=leverage,
        opens_exposure=opens,
        reduce_only=not opens,
    )


def _gate(**rules) -> ComplianceGate:
    return ComplianceGate(ComplianceConfig(jurisdiction="X", jurisdictions={"X": rules}))


def _check(
    gate: ComplianceGate,
    intent: OrderIntent,
    *,
    exchange: str = "binance",
    market_type: str = "spot",
):
    return gate.check(intent, View(), exchange=exchange, market_type=market_type)


@pytest.mark.parametrize(
    ("rules", "intent_kwargs", "venue", "rule_name"),
    [
        ({"restricted_exchanges": ["bybit"]}, {}, {"exchange": "bybit"}, "restricted_exchange"),
        (
            {"restricted_market_types": ["futures"]},
            {},
            {"market_type": "futures"},
            "restricted_market_type",
        ),
        ({"restricted_symbols": ["btc/usdt"]}, {}, {}, "restricted_symbol"),
        ({"max_leverage": 2}, {"leverage": 5}, {}, "max_leverage"),
        ({"max_order_notional": 1_000}, {"quantity": 0.1}, {}, "max_order_notional"),
        ({"trading_hours": "13:30-20:00"}, {"timestamp": NOON}, {}, "trading_hours"),
    ],
)
def test_rule_with_violating_order_blocks_with_rule_name(rules, intent_kwargs, venue, rule_name):
    decision = _check(_gate(**rules), _intent(**intent_kwargs), **venue)
    assert not decision.allowed
    assert decision.rule == f"compliance:{rule_name}"
    assert decision.reason
    assert (
        decision.events[0].action == "blocked" and decision.events[0].details["jurisdiction"] == "X"
    )


@pytest.mark.parametrize(
    ("rules", "intent_kwargs", "venue"),
    [
        ({"restricted_exchanges": ["bybit"]}, {}, {"exchange": "binance"}),
        ({"restricted_market_types": ["futures"]}, {}, {"market_type": "spot"}),
        ({"restricted_symbols": ["ETHUSDT"]}, {}, {}),
        ({"max_leverage": 2}, {"leverage": 2}, {}),
        ({"max_order_notional": 10_000}, {"quantity": 0.1}, {}),
        ({"trading_hours": "13:30-20:00"}, {"timestamp": EVENING - 2 * 3_600_000}, {}),
        ({"trading_hours": "20:30-02:00"}, {"timestamp": EVENING}, {}),
    ],
)
def test_rule_with_compliant_order_allows_and_records_approval(rules, intent_kwargs, venue):
    decision = _check(_gate(**rules), _intent(**intent_kwargs), **venue)
    assert decision.allowed and decision.quantity == pytest.approx(
        intent_kwargs.get("quantity", 0.1)
    )
    assert [event.action for event in decision.events] == ["approved"]


def test_gate_with_reducing_order_allows_even_when_rules_forbid_opening():
    gate = _gate(restricted_symbols=["BTCUSDT"], max_order_notional=10, trading_hours="13:30-20:00")
    assert _check(gate, _intent(opens=False)).allowed, "closing a position must never be blocked"


def test_gate_without_jurisdiction_allows_everything():
    gate = ComplianceGate(ComplianceConfig(jurisdictions={"US": JurisdictionRules(max_leverage=1)}))
    assert _check(gate, _intent(leverage=20)).allowed


def test_config_with_unknown_jurisdiction_raises_naming_known_ones():
    with pytest.raises(ValidationError, match="'EU' has no rule set .*US"):
        ComplianceConfig(jurisdiction="EU", jurisdictions={"US": {}})


@pytest.mark.parametrize("window", ["9-17", "25:00-26:00", "10:00-10:00", "10:61-11:00"])
def test_config_with_bad_trading_hours_raises(window):
    with pytest.raises(ValidationError, match="trading_hours"):
        JurisdictionRules(trading_hours=window)


def test_config_with_unknown_field_raises():
    with pytest.raises(ValidationError, match="max_levrage"):
        JurisdictionRules(max_levrage=2)


def test_config_with_verifier_url_not_http_raises():
    with pytest.raises(ValidationError, match="http"):
        ComplianceConfig(verifier={"url": "ftp://example"})
