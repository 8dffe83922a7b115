"""Fault injection: the failures a real exchange produces, on demand and reproducibly.

Why: retry, backoff, idempotent client order ids and reconnect logic are only trustworthy when
each failure has been seen. A rule fires for the next ``count`` matching requests, or with a
seeded ``probability`` for chaos tests, so a failing run can be replayed exactly.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultKind = Literal[
    "rate_limit",  # 429 + Retry-After, code -1003
    "ip_ban",  # 418 + Retry-After, code -1003
    "unavailable",  # 503, code -1001
    "latency",  # delay the answer by latency_seconds, then answer normally
    "timeout_after_accept",  # apply the request, then hold the answer for latency_seconds
    "drop_after_accept",  # apply the request, then close the connection without an answer
    "drop_connection",  # close the connection without applying the request
]


class Fault(BaseModel):
    """One fault rule.

    ``path`` is a substring of the request path (``/api/v3/order``, ``/fapi/v1/order``,
    ``klines``); ``method`` limits it to one HTTP method. ``count`` is how many matching requests
    fault (``None`` = unlimited, handy with ``probability``).
    """

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    count: int | None = Field(default=1, ge=1)
    path: str | None = None
    method: str | None = None
    probability: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = None
    retry_after_seconds: int = Field(default=1, ge=0)
    latency_seconds: float = Field(default=0.0, ge=0.0, le=600.0)

    @model_validator(mode="after")
    def _check(self) -> Fault:
        if self.kind in ("latency", "timeout_after_accept") and self.latency_seconds <= 0:
            raise ValueError(f"fault kind {self.kind!r} needs latency_seconds > 0")
        if self.method is not None:
            self.method = self.method.upper()
        return self


@dataclass(slots=True)
class _ActiveRule:
    fault: Fault
    remaining: int | None
    rng: random.Random
    fired: int = 0


class FaultInjector:
    """Holds the active rules and decides, per request, which fault (if any) applies.

    Thread-safe: tests add rules from their own thread while the server reads them.
    """

    def __init__(self, seed: int = 0) -> None:
        self._rules: list[_ActiveRule] = []
        self._lock = threading.Lock()
        self._seed = seed
        self.history: list[dict[str, object]] = []

    def add(self, fault: Fault) -> None:
        seed = (
            fault.seed
            if fault.seed is not None
            else self._seed + len(self.history) + len(self._rules)
        )
        with self._lock:
            self._rules.append(
                _ActiveRule(fault=fault, remaining=fault.count, rng=random.Random(seed))
            )

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def active(self) -> list[dict[str, object]]:
        with self._lock:
            return [
                {**rule.fault.model_dump(), "remaining": rule.remaining, "fired": rule.fired}
                for rule in self._rules
            ]

    def match(self, method: str, path: str) -> Fault | None:
        """The fault to apply to this request, consuming one use of the rule."""
        with self._lock:
            for rule in list(self._rules):
                fault = rule.fault
                if fault.path is not None and fault.path not in path:
                    continue
                if fault.method is not None and fault.method != method.upper():
                    continue
                if fault.probability < 1.0 and rule.rng.random() >= fault.probability:
                    continue
                rule.fired += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                self.history.append({"kind": fault.kind, "method": method, "path": path})
                return fault
        return None
