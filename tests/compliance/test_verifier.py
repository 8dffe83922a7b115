"""The external verifier against a loopback HTTP service: allow, deny, timeout, down, per policy."""

from __future__ import annotations

import pytest

from metaexpert.compliance import ComplianceConfig, ComplianceGate
from tests.compliance.test_rules import View, _intent

pytestmark = pytest.mark.network


def _gate(
    url: str, policy: str = "fail_closed", *, retries: int = 1, timeout: float = 0.3
) -> ComplianceGate:
    return ComplianceGate(
        ComplianceConfig(
            verifier={
                "url": url,
                "failure_policy": policy,
                "retries": retries,
                "timeout_seconds": timeout,
                "retry_wait_seconds": 0.01,
            }
        )
    )


def _check(gate: ComplianceGate):
    try:
        return gate.check(_intent(), View(), exchange="binance", market_type="spot")
    finally:
        gate.close()


@pytest.mark.parametrize("policy", ["fail_closed", "fail_open"])
def test_verifier_with_allow_answer_allows_under_either_policy(verifier_service, policy):
    decision = _check(_gate(verifier_service.url, policy))
    assert decision.allowed
    assert [event.action for event in decision.events] == ["approved"]
    sent = verifier_service.requests[0]
    assert (
        sent["symbol"] == "BTCUSDT"
        and sent["exchange"] == "binance"
        and sent["notional"] == pytest.approx(5_000)
    )
    assert not any("key" in name.lower() or "secret" in name.lower() for name in sent), (
        "no credentials in the payload"
    )


@pytest.mark.parametrize("policy", ["fail_closed", "fail_open"])
def test_verifier_with_deny_answer_blocks_under_either_policy(verifier_service, policy):
    verifier_service.mode = "deny"
    decision = _check(_gate(verifier_service.url, policy))
    assert not decision.allowed
    assert decision.rule == "compliance:external_verification"
    assert "sanctioned counterparty" in decision.reason
    assert len(verifier_service.requests) == 1, "a clear deny is not retried"


@pytest.mark.parametrize(("policy", "allowed"), [("fail_closed", False), ("fail_open", True)])
def test_verifier_with_timeout_retries_then_applies_policy(verifier_service, policy, allowed):
    verifier_service.mode = "slow"
    verifier_service.delay = 0.6
    decision = _check(_gate(verifier_service.url, policy, retries=1, timeout=0.2))
    assert decision.allowed is allowed
    # Without the 0.2 s timeout the first request would have been answered (after 0.6 s) and
    # never retried: two requests prove both timed out, with no wall-clock bound.
    assert len(verifier_service.requests) == 2, "one retry after the first timeout"
    text = decision.reason if not allowed else decision.events[0].reason
    assert "timed out" in text
    if allowed:
        assert decision.events[0].action == "allowed_unverified"


@pytest.mark.parametrize(("policy", "allowed"), [("fail_closed", False), ("fail_open", True)])
def test_verifier_with_closed_port_applies_policy(closed_port_url, policy, allowed):
    decision = _check(_gate(closed_port_url, policy, retries=2))
    assert decision.allowed is allowed
    reason = decision.reason if not allowed else decision.events[0].reason
    assert "unreachable" in reason and "after 3 attempts" in reason


@pytest.mark.parametrize(("policy", "allowed"), [("fail_closed", False), ("fail_open", True)])
def test_verifier_with_server_error_retries_then_applies_policy(verifier_service, policy, allowed):
    verifier_service.mode = "error"
    decision = _check(_gate(verifier_service.url, policy, retries=2))
    assert decision.allowed is allowed
    assert len(verifier_service.requests) == 3
