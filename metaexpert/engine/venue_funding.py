"""Perpetual funding in paper and live runs, from the venue, by the backtest's rule.

A backtest books funding from recorded rates (``metaexpert.backtest.funding``) through
``FundingSchedule.settle``. A paper or live run learns the rates from the venue instead,
through the gateway (ccxt ``fetchFundingRate`` for the coming funding time, the venue's
``nextFundingTime``; ``fetchFundingRateHistory`` for the rate and mark it settled at), and
what happens at each funding time depends on who keeps the wallet:

- paper: nobody at the venue holds the run's positions, so the engine books the payment
  itself, on the first poll that reaches the funding time (a venue clock at the last
  millisecond before it counts: ``LAST_MS``) and finds the venue announcing the next one (its
  clock is the judge), before that poll's fills (what is held at the funding time pays; a
  fill after it does not). The venue's settled rate and
  mark go into the run's ``FundingSchedule`` and are settled by the same code as in a
  backtest (``FundingSchedule.settle`` -> ``settle_funding``): long pays a positive rate,
  ``quantity * contract size * mark * rate`` (inverse: ``/ mark``, in coins), into the wallet
  and onto the position (its closed trade carries it). When the venue's history does not
  list the funding time yet, the rate it announced before is used and a warning says so; the
  mark is then the traded price at that poll.
- live: the venue books funding into the wallet itself. The engine books nothing by the
  rule; after the poll that reaches the funding time has synced the orders, it reads the
  wallet back (``fetch_balance``) and books the difference between the venue's wallet and its
  own as that funding time's payment, split over the open legs in proportion to what the rule
  says each owes: the engine's wallet is then the venue's, and funding is booked once. When the
  difference is not the funding (beyond ``READ_BACK_TOLERANCE`` of the rule's figure: a fee the
  engine estimated otherwise than the venue charged, a fill the poll has not reported), the
  rule's figure from the venue's own rate and mark is booked instead and a warning names the
  rest; the engine's wallet is not forced to the venue's.

Every settled leg is a ``FundingPayment`` in ``payments`` (as ``BacktestResult.funding``) and
one INFO log line. ``simulation={"funding": "none"}`` turns paper funding off as in backtests.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from metaexpert.core.enums import TradeMode
from metaexpert.core.funding import FundingRate
from metaexpert.core.position import Position
from metaexpert.engine.funding import (
    FundingPayment,
    FundingSchedule,
    book_funding,
    funding_due,
)
from metaexpert.engine.portfolio import Portfolio

logger = logging.getLogger("metaexpert.funding")

#: Venues stamp the end of a period at its last millisecond (Binance ``closeTime``: the bar
#: ending at 08:00 closes at 07:59:59.999, and a ticker polled then says so): a poll stamped
#: one millisecond before the funding time has reached it.
LAST_MS = 1
#: Live: the venue's wallet change is taken as the funding when within this fraction of what
#: the rule says (its mark may differ a little from the one its history lists).
READ_BACK_TOLERANCE = 0.02


class VenueFunding:
    """The funding of one paper or live run on perpetuals; see the module docstring."""

    def __init__(
        self, gateway: Any, symbols: Sequence[str], trade_mode: TradeMode, currency: str
    ) -> None:
        self.gateway = gateway
        self.live = trade_mode is TradeMode.LIVE
        self.currency = currency
        self.symbols = list(symbols)
        self.schedules = {symbol: FundingSchedule(symbol, [], [], []) for symbol in symbols}
        self.announced: dict[str, FundingRate] = {}
        self.payments: list[FundingPayment] = []
        self.enabled = True
        self._due: list[tuple[Position, FundingPayment]] = []  # live: read back after the sync
        self._due_times: list[tuple[str, int]] = []

    async def start(self) -> None:
        for symbol in self.symbols:
            announced = await self._announcement(symbol)
            if announced is not None:
                self.announced[symbol] = announced

    async def _announcement(self, symbol: str) -> FundingRate | None:
        """The venue's coming funding time and rate of ``symbol`` (None: asked again later)."""
        try:
            return await self.gateway.fetch_funding_rate(symbol)  # type: ignore[no-any-return]
        except NotImplementedError:
            self.enabled = False
            logger.warning("the venue serves no funding rates: this run books no funding")
        except Exception as error:  # noqa: BLE001 - asked again at the next poll
            logger.warning("funding rate of %s not available (asked again): %s", symbol, error)
        return None

    async def _settled(self, symbol: str, funding_time: int) -> FundingRate:
        """The rate (and mark) the venue settled ``funding_time`` at, else the announced one."""
        try:
            for record in await self.gateway.fetch_funding_rate_history(
                symbol, since=funding_time, limit=10
            ):
                if record.funding_time == funding_time:
                    return record
        except Exception as error:  # noqa: BLE001 - the announced rate stands in
            logger.warning("funding history of %s not available: %s", symbol, error)
        announced = self.announced[symbol]
        logger.warning(
            "%s: the venue lists no settled rate for the funding time %d yet: its announced rate "
            "%r is booked, at the traded price",
            symbol,
            funding_time,
            announced.rate,
        )
        return FundingRate(symbol, funding_time, announced.rate)

    async def before_fills(
        self, portfolio: Portfolio, symbol: str, now_ms: int, price: float
    ) -> None:
        """On every poll, before its fills: settle (paper) or note (live) a funding time passed."""
        if not self.enabled:
            return
        announced = self.announced.get(symbol)
        if announced is None:
            fresh = await self._announcement(symbol)
            if fresh is not None:
                self.announced[symbol] = fresh
            return
        if now_ms + LAST_MS < announced.funding_time:
            return
        # The venue's own clock decides: the funding time has passed once it announces a later one
        # (a venue whose tickers carry no time leaves the runtime on the wall clock).
        fresh = await self._announcement(symbol)
        if fresh is None or fresh.funding_time <= announced.funding_time:
            return
        funding_time = announced.funding_time
        settled = await self._settled(symbol, funding_time)
        mark = settled.mark_price if settled.mark_price > 0 else math.nan
        if self.live:
            due = funding_due(
                portfolio, symbol, funding_time, settled.rate, mark if mark > 0 else price
            )
            self._due += due
            self._due_times.append((symbol, funding_time))
        else:
            schedule = self.schedules[symbol]
            schedule.add(funding_time, settled.rate, mark)
            booked = len(schedule.payments)
            # the backtest's code path
            schedule.settle(portfolio, max(now_ms, funding_time), price)
            for payment in schedule.payments[booked:]:
                self._record(payment, "paper")
        self.announced[symbol] = fresh

    async def after_sync(self, portfolio: Portfolio) -> None:
        """Live, once the poll synced the orders: book what the venue's wallet says funding was."""
        if not self._due_times:
            return
        due, self._due = self._due, []
        self._due_times = []
        venue = await self.gateway.fetch_balance(self.currency)
        delta = venue.balance - portfolio.account.balance
        if not due:
            if delta:
                logger.info(
                    "funding time passed with no open position; the venue's wallet differs from "
                    "the engine's by %r %s (not booked as funding)",
                    delta,
                    self.currency,
                )
            return
        expected = sum(payment.amount for _, payment in due)
        if abs(delta - expected) > READ_BACK_TOLERANCE * abs(expected) + 1e-9:
            # More moved than funding (a fee the engine estimated otherwise, a fill not reported
            # yet): book the rule's figure, the venue's own rate and mark, and say what is left.
            logger.warning(
                "the venue's wallet moved by %r %s over the funding time, the rule says %r: the "
                "rule's figure is booked as funding, %r is unexplained (fees or fills the engine "
                "sees otherwise)",
                delta,
                self.currency,
                expected,
                delta - expected,
            )
            for position, payment in due:
                book_funding(portfolio, position, payment)
                self._record(payment, "live, by the rule: the venue's wallet differs")
            return
        for position, payment in due:
            share = delta * payment.amount / expected if expected else delta / len(due)
            rule = payment.amount
            payment.amount = share
            book_funding(portfolio, position, payment)
            self._record(
                payment, f"live, read back from the venue's wallet; the rule says {rule!r}"
            )

    def _record(self, payment: FundingPayment, how: str) -> None:
        self.payments.append(payment)
        logger.info(
            "funding %s %s %s at mark %s, rate %s: %+.10g %s (%s)",
            payment.symbol,
            payment.side.value,
            payment.quantity,
            payment.mark_price,
            payment.rate,
            payment.amount,
            self.currency,
            how,
        )
