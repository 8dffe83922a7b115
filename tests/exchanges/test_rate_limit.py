"""PriorityRateLimiter: orders are always served, market data is shed when the budget is short."""

from __future__ import annotations

import asyncio

import pytest

from metaexpert.exchanges import PriorityRateLimiter, RequestPriority, RequestShed


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rate_limiter_with_starved_budget_serves_all_orders_and_sheds_market_data() -> None:
    time = FakeTime()
    limiter = PriorityRateLimiter(60, reserved_fraction=0.25, clock=time.clock, sleep=time.sleep)

    async def scenario() -> tuple[int, int, int, int]:
        data_served = data_shed = orders_served = 0
        for step in range(400):
            time.now += 0.05  # 400 requests in 20 s against 60/minute: heavily starved
            try:
                await limiter.acquire(RequestPriority.MARKET_DATA)
                data_served += 1
            except RequestShed:
                data_shed += 1
            if step % 10 == 0:
                before = time.now
                await limiter.acquire(RequestPriority.ORDER)
                orders_served += 1
                assert time.now == before, "an order had to wait"
        return data_served, data_shed, orders_served, 40

    data_served, data_shed, orders_served, orders_sent = asyncio.run(scenario())
    print(
        f"market data served={data_served} shed={data_shed}; orders served {orders_served}/{orders_sent}"
    )
    assert orders_served == orders_sent
    assert data_shed > 300
    assert data_served < 70
    assert limiter.statistics.shed[RequestPriority.MARKET_DATA] == data_shed


def test_rate_limiter_with_wait_mode_delays_market_data_instead_of_shedding() -> None:
    time = FakeTime()
    limiter = PriorityRateLimiter(
        60, reserved_fraction=0.5, shed_market_data=False, clock=time.clock, sleep=time.sleep
    )

    async def scenario() -> None:
        for _ in range(31):
            await limiter.acquire(RequestPriority.MARKET_DATA)

    asyncio.run(scenario())
    # 30 tokens above the reserve were free; the 31st waited about one refill (1 s).
    assert time.now == pytest.approx(1.0, abs=1e-6)


def test_rate_limiter_with_account_requests_keeps_half_the_reserve() -> None:
    time = FakeTime()
    limiter = PriorityRateLimiter(100, reserved_fraction=0.2, clock=time.clock, sleep=time.sleep)
    served = 0
    while limiter.try_acquire(RequestPriority.ACCOUNT) == 0.0:
        served += 1
    assert served == 90
    assert limiter.try_acquire(RequestPriority.CANCEL) == 0.0


def test_rate_limiter_with_orders_beyond_debt_limit_waits_not_fails() -> None:
    time = FakeTime()
    limiter = PriorityRateLimiter(
        60, reserved_fraction=0.0, borrow_limit=2, clock=time.clock, sleep=time.sleep
    )

    async def scenario() -> None:
        for _ in range(63):
            await limiter.acquire(RequestPriority.ORDER)

    asyncio.run(scenario())
    assert time.now == pytest.approx(1.0, abs=1e-6)


def test_rate_limiter_with_invalid_budget_raises() -> None:
    with pytest.raises(ValueError, match="requests_per_minute must be positive"):
        PriorityRateLimiter(0)
