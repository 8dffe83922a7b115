"""A request budget per expert that serves orders first and sheds market data when short.

ccxt's own limiter spaces requests to respect the exchange's weight limits, but it is
first-come-first-served: a burst of ticker polls can delay a stop-loss order. This limiter
sits in front of it with a budget in requests per minute (a continuously refilled token
bucket) and four priorities, ``ORDER > CANCEL > ACCOUNT > MARKET_DATA``:

* ``MARKET_DATA`` may only spend tokens above the reserved share; below it the request is
  shed (``RequestShed``) or waits, as configured;
* ``ACCOUNT`` may spend down to half the reserve, and waits (never shed) below that;
* ``ORDER`` and ``CANCEL`` may spend everything and then borrow up to ``borrow_limit``
  tokens (the bucket goes into debt that later refills repay), so they are served at once
  even when the budget is exhausted; only beyond the debt limit do they wait.

The clock and the sleep are injectable so tests are deterministic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum

from metaexpert.exchanges.errors import RequestShed


class RequestPriority(IntEnum):
    """Higher value = more important."""

    MARKET_DATA = 0
    ACCOUNT = 1
    CANCEL = 2
    ORDER = 3


@dataclass(slots=True)
class RateLimiterStatistics:
    served: dict[RequestPriority, int]
    shed: dict[RequestPriority, int]
    waited_seconds: float = 0.0


class PriorityRateLimiter:
    def __init__(
        self,
        requests_per_minute: float,
        *,
        reserved_fraction: float = 0.2,
        borrow_limit: float | None = None,
        shed_market_data: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError(f"requests_per_minute must be positive, got {requests_per_minute}")
        if not 0.0 <= reserved_fraction < 1.0:
            raise ValueError(f"reserved_fraction must be in [0, 1), got {reserved_fraction}")
        self.capacity = float(requests_per_minute)
        self.refill_per_second = self.capacity / 60.0
        self.reserve = self.capacity * reserved_fraction
        self.borrow_limit = self.reserve if borrow_limit is None else float(borrow_limit)
        if self.borrow_limit < 0:
            raise ValueError(f"borrow_limit must not be negative, got {borrow_limit}")
        self.shed_market_data = shed_market_data
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()
        self.statistics = RateLimiterStatistics(
            served={priority: 0 for priority in RequestPriority},
            shed={priority: 0 for priority in RequestPriority},
        )
        #: called with the seconds of each wait (the run's metrics count them)
        self.on_wait: Callable[[float], None] | None = None

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(now - self._updated, 0.0)
        self._updated = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_second)

    def _floor(self, priority: RequestPriority) -> float:
        """The lowest level the bucket may reach after a request of this priority."""
        if priority is RequestPriority.MARKET_DATA:
            return self.reserve
        if priority is RequestPriority.ACCOUNT:
            return self.reserve / 2.0
        return -self.borrow_limit

    def try_acquire(self, priority: RequestPriority, cost: float = 1.0) -> float:
        """Take ``cost`` tokens if allowed now; return 0.0 on success or the seconds to wait."""
        self._refill()
        floor = self._floor(priority)
        if self._tokens - cost >= floor - 1e-9:
            self._tokens -= cost
            self.statistics.served[priority] += 1
            return 0.0
        missing = floor - (self._tokens - cost)
        return missing / self.refill_per_second

    async def acquire(self, priority: RequestPriority, cost: float = 1.0) -> None:
        """Wait for (or, for market data in shedding mode, refuse) a slot in the budget."""
        while True:
            wait = self.try_acquire(priority, cost)
            if wait <= 0.0:
                return
            if priority is RequestPriority.MARKET_DATA and self.shed_market_data:
                self.statistics.shed[priority] += 1
                raise RequestShed(
                    f"market-data request shed: {self._tokens:.1f} of {self.capacity:.0f} "
                    f"requests/minute left and {self.reserve:.0f} are reserved for orders",
                    retry_after=wait,
                )
            self.statistics.waited_seconds += wait
            if self.on_wait is not None:
                self.on_wait(wait)
            await self._sleep(wait)
