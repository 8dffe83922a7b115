"""Retry recoverable exchange failures with exponential backoff, jitter and Retry-After.

Only errors classified as recoverable are retried; a permanent error fails on the first
attempt, and an unknown order outcome is left to the caller (it must look the order up
first). When the venue said how long to wait (``Retry-After``), that wait wins over the
computed backoff if it is longer.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from metaexpert.exchanges.errors import ErrorClass, classify_error

T = TypeVar("T")


class RetryPolicy(BaseModel):
    """How persistently a recoverable failure is retried."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(default=5, ge=1, le=100)
    initial_delay: float = Field(default=0.5, ge=0.0)
    maximum_delay: float = Field(default=30.0, gt=0.0)
    jitter: float = Field(default=0.5, ge=0.0)
    honour_retry_after: bool = True
    maximum_retry_after: float = Field(default=120.0, gt=0.0)


def retry_after_of(exc: BaseException | None) -> float | None:
    """The pause (seconds) the venue asked for, if the error carries one."""
    if exc is None:
        return None
    value = getattr(exc, "retry_after", None)
    if value is None:
        value = getattr(exc, "retry_after_seconds", None)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _is_retryable(exc: BaseException) -> bool:
    return classify_error(exc) is ErrorClass.RECOVERABLE


class _WaitWithRetryAfter:
    """Exponential backoff with jitter, raised to the venue's Retry-After when that is longer."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._backoff = wait_exponential_jitter(
            initial=policy.initial_delay, max=policy.maximum_delay, jitter=policy.jitter
        )

    def __call__(self, state: RetryCallState) -> float:
        delay = self._backoff(state)
        if self._policy.honour_retry_after and state.outcome is not None:
            retry_after = retry_after_of(state.outcome.exception())
            if retry_after is not None:
                delay = max(delay, min(retry_after, self._policy.maximum_retry_after))
        return delay


def retrying(
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    before_sleep: Callable[[RetryCallState], object] | None = None,
    retry_on: Callable[[BaseException], bool] = _is_retryable,
) -> AsyncRetrying:
    """A tenacity controller for ``async for attempt in retrying(policy): with attempt: ...``."""
    return AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_WaitWithRetryAfter(policy),
        retry=retry_if_exception(retry_on),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


async def call_with_retry(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    before_sleep: Callable[[RetryCallState], object] | None = None,
) -> T:
    """Run ``operation`` until it succeeds, fails permanently, or the attempts run out."""
    async for attempt in retrying(policy, sleep=sleep, before_sleep=before_sleep):
        with attempt:
            return await operation()
    raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover


def parse_retry_after(headers: Any) -> float | None:
    """A ``Retry-After`` header in seconds (delay-seconds or HTTP-date form), or None."""
    if not isinstance(headers, dict):
        return None
    value = None
    for key, item in headers.items():
        if str(key).lower() == "retry-after":
            value = item
            break
    if value is None:
        return None
    text = str(value).strip()
    if text.replace(".", "", 1).isdigit():
        return float(text)  # delay-seconds form
    try:
        moment = email.utils.parsedate_to_datetime(text)  # HTTP-date form
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)
