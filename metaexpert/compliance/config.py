"""Compliance settings, validated once: rule sets per jurisdiction and the external verifier.

A deployment declares every jurisdiction it may run under and picks the active one, so
switching a desk from "EU" to "US" is one setting and never an edit of rule code::

    ComplianceConfig(
        jurisdiction="US",
        jurisdictions={"US": {"restricted_market_types": ["futures"], "max_leverage": 2,
                              "trading_hours": "13:30-20:00", "max_order_notional": 50_000}},
        verifier={"url": "https://compliance.internal/verify", "failure_policy": "fail_closed"},
    )
"""

from __future__ import annotations

import re
from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from metaexpert.core.enums import Exchange, MarketType

_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_trading_hours(text: str) -> tuple[time, time]:
    """``"13:30-20:00"`` -> (13:30, 20:00) in UTC; a window may wrap midnight ("22:00-02:00")."""
    match = _HOURS.match(text)
    if match is None:
        raise ValueError(
            f"trading_hours {text!r} must look like 'HH:MM-HH:MM' (UTC), e.g. '13:30-20:00'"
        )
    start_hour, start_minute, end_hour, end_minute = (int(part) for part in match.groups())
    for hour, minute in ((start_hour, start_minute), (end_hour, end_minute)):
        if hour > 24 or minute > 59 or (hour == 24 and minute != 0):
            raise ValueError(f"trading_hours {text!r} contains an invalid time of day")
    start = time(start_hour % 24, start_minute)
    end = time(end_hour % 24, end_minute)
    if start == end and not (start_hour == 0 and end_hour == 24):
        raise ValueError(f"trading_hours {text!r} is an empty window (start equals end)")
    return start, end


class JurisdictionRules(BaseModel):
    """What one jurisdiction forbids. Every field is optional: unset means unrestricted."""

    model_config = ConfigDict(extra="forbid")

    restricted_exchanges: list[Exchange] = Field(default_factory=list)
    restricted_market_types: list[MarketType] = Field(default_factory=list)
    restricted_symbols: list[str] = Field(default_factory=list)
    max_leverage: float | None = Field(default=None, gt=0)
    max_order_notional: float | None = Field(default=None, gt=0)
    trading_hours: str | None = Field(
        default=None, description="UTC window 'HH:MM-HH:MM' when opening orders are allowed"
    )

    @field_validator("restricted_symbols")
    @classmethod
    def _symbols(cls, values: list[str]) -> list[str]:
        cleaned = []
        for value in values:
            text = value.strip().upper()
            if not text:
                raise ValueError("restricted_symbols contains an empty symbol")
            cleaned.append(text)
        return cleaned

    @field_validator("trading_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None:
            parse_trading_hours(value)
        return value


class VerifierConfig(BaseModel):
    """An external compliance service asked about every opening order (allow / deny).

    ``failure_policy`` decides what happens when the service cannot answer (timeout,
    connection refused, 5xx after the retries): ``fail_closed`` (the default) blocks the
    order, ``fail_open`` lets it through and records that it went unverified.
    """

    model_config = ConfigDict(extra="forbid")

    url: str
    timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=10, description="extra attempts after the first")
    retry_wait_seconds: float = Field(default=0.2, ge=0, le=10)
    failure_policy: Literal["fail_closed", "fail_open"] = "fail_closed"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"verifier url {value!r} must be an http:// or https:// URL")
        return value


class ComplianceConfig(BaseModel):
    """Rule sets per jurisdiction, the active one, and an optional external verifier."""

    model_config = ConfigDict(extra="forbid")

    jurisdiction: str | None = None
    jurisdictions: dict[str, JurisdictionRules] = Field(default_factory=dict)
    verifier: VerifierConfig | None = None
    record_approvals: bool = Field(
        default=True,
        description="emit an 'approved' decision event per checked order (audit trail)",
    )

    @model_validator(mode="after")
    def _known_jurisdiction(self) -> ComplianceConfig:
        if self.jurisdiction is not None and self.jurisdiction not in self.jurisdictions:
            known = ", ".join(sorted(self.jurisdictions)) or "none"
            raise ValueError(
                f"jurisdiction {self.jurisdiction!r} has no rule set (configured: {known})"
            )
        return self

    @property
    def active_rules(self) -> JurisdictionRules:
        if self.jurisdiction is None:
            return JurisdictionRules()
        return self.jurisdictions[self.jurisdiction]
