"""Risk event actions are an enum (``RiskEventAction``), not free strings compared by value."""

from __future__ import annotations

import pytest

from metaexpert.core.enums import RiskEventAction
from metaexpert.core.events import RiskEvent


def test_risk_event_with_stored_action_text_reads_back_as_the_enum():
    event = RiskEvent(rule="max_drawdown", action="halted", timestamp=0)  # type: ignore[arg-type]
    assert event.action is RiskEventAction.HALTED
    assert event.action == "halted"  # what the audit trail and the database store


def test_risk_event_with_misspelt_action_raises():
    with pytest.raises(ValueError, match="'halt'"):
        RiskEvent(rule="max_drawdown", action="halt", timestamp=0)  # type: ignore[arg-type]


def test_risk_decision_with_a_block_carries_the_enum():
    from metaexpert.core.intent import RiskDecision

    decision = RiskDecision.block("max_positions", "too many", 0, "BTCUSDT")
    assert [event.action for event in decision.events] == [RiskEventAction.BLOCKED]
    assert decision.events[0].action is RiskEventAction.BLOCKED
