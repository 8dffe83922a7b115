"""The compliance gate the engine asks before every order, in every mode.

``ComplianceGate.check`` runs the active jurisdiction's rules (then the external verifier)
and answers with the same ``RiskDecision`` the risk manager uses, so the engine handles a
compliance block exactly like a risk block: the order becomes REJECTED with reason
``risk rule compliance:<rule>: <why>`` and a ``RiskEvent`` reaches every observer (the
audit trail). The engine does not know the venue, so it holds a ``BoundComplianceGate``
(``gate.bind(exchange=..., market_type=...)``) whose ``check(intent, view)`` fills it in.
"""

from __future__ import annotations

from typing import Any

from metaexpert.compliance.config import ComplianceConfig
from metaexpert.compliance.rules import ComplianceRule, OrderContext, rules_for
from metaexpert.compliance.verifier import ExternalVerificationRule, ExternalVerifier
from metaexpert.core.enums import Exchange, MarketType, RiskEventAction
from metaexpert.core.events import RiskEvent
from metaexpert.core.intent import OrderIntent, RiskDecision
from metaexpert.core.portfolio import PortfolioView

RULE_PREFIX = "compliance:"


class ComplianceGate:
    def __init__(
        self,
        config: ComplianceConfig | dict[str, Any],
        *,
        rules: list[ComplianceRule] | None = None,
        verifier: ExternalVerifier | None = None,
    ) -> None:
        self.config = (
            config
            if isinstance(config, ComplianceConfig)
            else ComplianceConfig.model_validate(config)
        )
        self.rules: list[ComplianceRule] = (
            list(rules) if rules is not None else rules_for(self.config.active_rules)
        )
        if verifier is None and self.config.verifier is not None:
            verifier = ExternalVerifier(self.config.verifier)
        self.verifier = verifier
        if verifier is not None:
            self.rules.append(ExternalVerificationRule(verifier))
        self.checked = 0
        self.blocked = 0

    def bind(
        self, *, exchange: Exchange | str, market_type: MarketType | str
    ) -> BoundComplianceGate:
        return BoundComplianceGate(self, Exchange(exchange), MarketType(market_type))

    def check(
        self,
        intent: OrderIntent,
        view: PortfolioView,
        *,
        exchange: Exchange | str,
        market_type: MarketType | str,
    ) -> RiskDecision:
        context = OrderContext(
            Exchange(exchange), MarketType(market_type), self.config.jurisdiction
        )
        self.checked += 1
        checked: list[str] = []
        unverified = ""
        for rule in self.rules:
            if not rule.applies(intent):
                continue
            checked.append(rule.name)
            reason = rule.violation(intent, view, context)
            if reason is not None:
                self.blocked += 1
                decision = RiskDecision.block(
                    RULE_PREFIX + rule.name, reason, intent.timestamp, intent.symbol
                )
                decision.events[0].details.update(_details(intent, context, checked))
                return decision
            verdict = getattr(rule, "last_verdict", None)
            if verdict is not None and not verdict.verified:
                unverified = verdict.reason
        decision = RiskDecision.allow(intent.quantity or 0.0)
        if unverified:
            decision.events.append(
                RiskEvent(
                    rule=RULE_PREFIX + "external_verification",
                    action=RiskEventAction.ALLOWED_UNVERIFIED,
                    timestamp=intent.timestamp,
                    symbol=intent.symbol,
                    reason=unverified,
                    details=_details(intent, context, checked),
                )
            )
        elif self.config.record_approvals and checked:
            decision.events.append(
                RiskEvent(
                    rule=RULE_PREFIX + "gate",
                    action=RiskEventAction.APPROVED,
                    timestamp=intent.timestamp,
                    symbol=intent.symbol,
                    reason=f"passed {', '.join(checked)}",
                    details=_details(intent, context, checked),
                )
            )
        return decision

    def close(self) -> None:
        if self.verifier is not None:
            self.verifier.close()


class BoundComplianceGate:
    """A gate tied to one venue: what the engine calls as ``compliance.check(intent, view)``."""

    def __init__(self, gate: ComplianceGate, exchange: Exchange, market_type: MarketType) -> None:
        self.gate = gate
        self.exchange = exchange
        self.market_type = market_type

    def check(self, intent: OrderIntent, view: PortfolioView) -> RiskDecision:
        return self.gate.check(intent, view, exchange=self.exchange, market_type=self.market_type)


def _details(intent: OrderIntent, context: OrderContext, checked: list[str]) -> dict[str, Any]:
    return {
        "jurisdiction": context.jurisdiction,
        "exchange": str(context.exchange),
        "market_type": str(context.market_type),
        "side": str(intent.side),
        "quantity": intent.quantity,
        "reference_price": intent.reference_price,
        "client_order_id": intent.client_order_id,
        "rules_checked": list(checked),
    }
