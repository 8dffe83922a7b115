"""Compliance: jurisdiction rules, an external verifier, and audit reports.

The gate runs before every order in every mode (backtest, paper, live) right after the
risk check; a block becomes a REJECTED order and a decision in the audit trail.
"""

from metaexpert.compliance.audit import (
    AuditReport,
    AuditRow,
    audit_entries_from_events,
    build_audit_report,
)
from metaexpert.compliance.config import ComplianceConfig, JurisdictionRules, VerifierConfig
from metaexpert.compliance.gate import RULE_PREFIX, BoundComplianceGate, ComplianceGate
from metaexpert.compliance.rules import (
    ComplianceRule,
    MaxLeverageRule,
    MaxOrderNotionalRule,
    OrderContext,
    RestrictedExchangeRule,
    RestrictedMarketTypeRule,
    RestrictedSymbolRule,
    TradingHoursRule,
    rules_for,
)
from metaexpert.compliance.verifier import (
    ExternalVerificationRule,
    ExternalVerifier,
    Verdict,
    intent_payload,
)

__all__ = [
    "RULE_PREFIX",
    "AuditReport",
    "AuditRow",
    "BoundComplianceGate",
    "ComplianceConfig",
    "ComplianceGate",
    "ComplianceRule",
    "ExternalVerificationRule",
    "ExternalVerifier",
    "JurisdictionRules",
    "MaxLeverageRule",
    "MaxOrderNotionalRule",
    "OrderContext",
    "RestrictedExchangeRule",
    "RestrictedMarketTypeRule",
    "RestrictedSymbolRule",
    "TradingHoursRule",
    "Verdict",
    "VerifierConfig",
    "audit_entries_from_events",
    "build_audit_report",
    "intent_payload",
    "rules_for",
]
