"""Ask an external compliance service about an order (httpx, retried with tenacity).

The service receives the order intent as JSON (never credentials) and answers
``{"allowed": true}`` or ``{"allowed": false, "reason": "..."}``. Transport failures,
timeouts and 5xx answers are retried; if no answer arrives, the configured failure policy
decides: fail closed (block, the default) or fail open (allow, recorded as unverified).
A 4xx answer or a malformed body is not retried (asking again will not fix it) and also
falls under the failure policy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metaexpert.compliance.config import VerifierConfig
from metaexpert.compliance.rules import ComplianceRule, OrderContext
from metaexpert.core.intent import OrderIntent
from metaexpert.core.portfolio import PortfolioView

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger("metaexpert.compliance")


class VerifierUnavailable(Exception):
    """The service gave no usable answer (transport error, timeout, 5xx, bad body)."""


class _Retryable(VerifierUnavailable):
    """A failure worth another attempt: transport error, timeout, 5xx."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one verification: ``verified`` False means the policy decided."""

    allowed: bool
    reason: str
    verified: bool


def intent_payload(intent: OrderIntent, context: OrderContext) -> dict[str, Any]:
    """The JSON the service receives: order facts only, nothing secret."""
    return {
        "symbol": intent.symbol,
        "side": str(intent.side),
        "order_type": str(intent.order_type),
        "quantity": intent.quantity,
        "price": intent.price,
        "reference_price": intent.reference_price,
        "notional": intent.notional,
        "leverage": intent.leverage,
        "reduce_only": intent.reduce_only,
        "opens_exposure": intent.opens_exposure,
        "position_side": str(intent.position_side) if intent.position_side else None,
        "timestamp_ms": intent.timestamp,
        "client_order_id": intent.client_order_id,
        "exchange": str(context.exchange),
        "market_type": str(context.market_type),
        "jurisdiction": context.jurisdiction,
    }


class ExternalVerifier:
    """A synchronous HTTP client: the engine asks before it submits, so it waits for the answer."""

    def __init__(self, config: VerifierConfig, *, client: httpx.Client | None = None) -> None:
        import httpx  # here, not at module import: only deployments with a verifier pay for it

        self.config = config
        self._client = client or httpx.Client(timeout=config.timeout_seconds)
        self.attempts = 0

    def close(self) -> None:
        self._client.close()

    def verify(self, intent: OrderIntent, context: OrderContext) -> Verdict:
        payload = intent_payload(intent, context)
        try:
            return self._ask_with_retries(payload)
        except VerifierUnavailable as error:
            return self._policy(str(error))

    def _ask_with_retries(self, payload: dict[str, Any]) -> Verdict:
        # Imported here: tenacity pulls asyncio and tornado in (0.15 s), and most runs never ask a verifier.
        from tenacity import (
            RetryError,
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_fixed,
        )

        config = self.config
        retrying = Retrying(
            stop=stop_after_attempt(config.retries + 1),
            wait=wait_fixed(config.retry_wait_seconds),
            retry=retry_if_exception_type(_Retryable),
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._ask(payload)
        except RetryError as error:
            last = error.last_attempt.exception()
            raise VerifierUnavailable(f"{last} (after {config.retries + 1} attempts)") from None
        raise VerifierUnavailable("no attempt was made")  # unreachable: Retrying always tries once

    def _ask(self, payload: dict[str, Any]) -> Verdict:
        import httpx

        self.attempts += 1
        try:
            response = self._client.post(
                self.config.url, json=payload, timeout=self.config.timeout_seconds
            )
        except httpx.TimeoutException:
            raise _Retryable(
                f"compliance verifier timed out after {self.config.timeout_seconds:g} s"
            ) from None
        except httpx.TransportError as error:
            raise _Retryable(f"compliance verifier unreachable: {type(error).__name__}") from None
        if response.status_code >= 500:
            raise _Retryable(f"compliance verifier answered HTTP {response.status_code}")
        if response.status_code >= 400:
            raise VerifierUnavailable(
                f"compliance verifier refused the request with HTTP {response.status_code}"
            )
        try:
            body = response.json()
        except ValueError:
            raise VerifierUnavailable(
                "compliance verifier answered with a body that is not JSON"
            ) from None
        if not isinstance(body, dict) or not isinstance(body.get("allowed"), bool):
            raise VerifierUnavailable("compliance verifier answer lacks a boolean 'allowed' field")
        return Verdict(body["allowed"], str(body.get("reason") or ""), verified=True)

    def _policy(self, problem: str) -> Verdict:
        if self.config.failure_policy == "fail_open":
            logger.warning("%s; order allowed unverified (fail_open policy)", problem)
            return Verdict(True, f"{problem}; allowed unverified (fail_open)", verified=False)
        logger.warning("%s; order blocked (fail_closed policy)", problem)
        return Verdict(False, f"{problem}; blocked (fail_closed)", verified=False)


class ExternalVerificationRule(ComplianceRule):
    """The external service as one more rule; a fail-open pass is noted on the gate."""

    name = "external_verification"

    def __init__(self, verifier: ExternalVerifier) -> None:
        self.verifier = verifier
        self.last_verdict: Verdict | None = None

    def violation(
        self, intent: OrderIntent, view: PortfolioView, context: OrderContext
    ) -> str | None:
        verdict = self.verifier.verify(intent, context)
        self.last_verdict = verdict
        if verdict.allowed:
            return None
        return verdict.reason or "denied by the external compliance service"
