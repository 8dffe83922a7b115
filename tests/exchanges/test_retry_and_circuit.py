"""Retry policy (backoff, Retry-After, recoverable only) and the circuit breaker, with fake time."""

from __future__ import annotations

import asyncio

import pytest

from metaexpert.exchanges import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ExchangePermanentError,
    ExchangeUnavailableError,
    RateLimitedError,
    RetryPolicy,
    call_with_retry,
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_call_with_retry_with_recoverable_errors_retries_then_succeeds() -> None:
    time = FakeTime()
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ExchangeUnavailableError("binance fetch_ticker: exchange not reachable")
        return "ok"

    policy = RetryPolicy(attempts=5, initial_delay=1.0, maximum_delay=8.0, jitter=0.0)
    assert asyncio.run(call_with_retry(flaky, policy, sleep=time.sleep)) == "ok"
    assert len(calls) == 3
    assert time.sleeps == [1.0, 2.0]  # exponential: 1, 2


def test_call_with_retry_with_permanent_error_fails_at_once() -> None:
    time = FakeTime()
    calls = []

    async def rejected() -> None:
        calls.append(1)
        raise ExchangePermanentError("binance create_order: bad request parameters")

    with pytest.raises(ExchangePermanentError):
        asyncio.run(call_with_retry(rejected, RetryPolicy(attempts=5), sleep=time.sleep))
    assert len(calls) == 1 and time.sleeps == []


def test_call_with_retry_with_retry_after_waits_at_least_that_long() -> None:
    time = FakeTime()
    calls = []

    async def throttled() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RateLimitedError("429", retry_after=5.0)
        return "ok"

    policy = RetryPolicy(attempts=3, initial_delay=0.1, jitter=0.0)
    asyncio.run(call_with_retry(throttled, policy, sleep=time.sleep))
    assert time.sleeps == [5.0]


def test_call_with_retry_with_attempts_exhausted_reraises_last_error() -> None:
    time = FakeTime()

    async def down() -> None:
        raise ExchangeUnavailableError("still down")

    with pytest.raises(ExchangeUnavailableError, match="still down"):
        asyncio.run(call_with_retry(down, RetryPolicy(attempts=4, jitter=0.0), sleep=time.sleep))
    assert len(time.sleeps) == 3


def test_circuit_breaker_with_consecutive_failures_opens_half_opens_and_closes() -> None:
    time = FakeTime()
    changes = []
    breaker = CircuitBreaker(
        "binance",
        failure_threshold=3,
        reset_timeout=10.0,
        clock=time.clock,
        on_state_change=lambda name, old, new: changes.append((name, old, new)),
    )
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError, match="3 consecutive failures"):
        breaker.before_call()
    time.now = 10.0
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.before_call()  # the probe goes through
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # a second caller during the probe is refused
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert [new for _, _, new in changes] == [
        CircuitState.OPEN,
        CircuitState.HALF_OPEN,
        CircuitState.CLOSED,
    ]


def test_circuit_breaker_with_failed_probe_reopens_for_another_cooldown() -> None:
    time = FakeTime()
    breaker = CircuitBreaker("okx", failure_threshold=1, reset_timeout=5.0, clock=time.clock)
    breaker.record_failure()
    time.now = 5.0
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    time.now = 9.0
    assert breaker.state is CircuitState.OPEN
    time.now = 10.0
    assert breaker.state is CircuitState.HALF_OPEN


def test_circuit_breaker_with_success_between_failures_stays_closed() -> None:
    breaker = CircuitBreaker("bybit", failure_threshold=2)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
