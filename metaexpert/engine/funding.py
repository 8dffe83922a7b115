"""Perpetual funding: positions pay or receive funding at the venue's funding times.

Binance, Bybit and OKX exchange funding between longs and shorts every 8 hours
(00:00, 08:00, 16:00 UTC on Binance USD-M). Whoever holds a position at a funding time
pays ``position value at the mark price * funding rate``: a positive rate means longs
pay shorts, a negative one shorts pay longs. The position value is in the settlement
currency, so for a linear contract it is ``quantity * contract_size * mark`` (USDT) and
for an inverse, coin-settled contract ``quantity * contract_size / mark`` (coins): an
inverse position of 100 contracts of 100 USD at a mark of 50,000 is worth 0.2 BTC and
pays 0.2 BTC * rate.

The payment goes to the wallet at once (as on the venue, where it shows in the wallet
history, not in the position's PnL) and is remembered on the position, so the round trip
that closes the position carries its share of the funding (``ClosedTrade.funding``, and
in its net ``pnl``): the trades still add up to the wallet.

``FundingSchedule`` holds the recorded events of one symbol and settles every event whose
time has come. The backtest replay settles before it matches the bar that opens at or
after the funding time, so a position held into the funding time pays and one opened by
an order filled at that bar's open does not (the venue's rule: what is held at the
funding timestamp pays). The price is the mark price at the funding time where mark
candles exist, else the traded price at that moment (the open of the bar at that time).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Final

from metaexpert.core.enums import PositionSide
from metaexpert.core.position import Position
from metaexpert.engine.portfolio import Portfolio


class FundingMode(StrEnum):
    """Where a perpetual backtest's funding comes from."""

    RECORDED = "recorded"  # the recorded funding rates; a run without them is refused
    NONE = "none"  # no funding payments (say so explicitly: it flatters carried longs)


#: "No further funding event": later than any millisecond timestamp a run can reach.
NEVER_MS: Final = 2**62


class FundingPayment:
    """One funding settlement of one position leg. ``amount`` > 0 was received, < 0 paid."""

    __slots__ = ("amount", "mark_price", "quantity", "rate", "side", "symbol", "timestamp")

    def __init__(
        self,
        timestamp: int,
        symbol: str,
        side: PositionSide,
        quantity: float,
        mark_price: float,
        rate: float,
        amount: float,
    ) -> None:
        self.timestamp = timestamp
        self.symbol = symbol
        self.side = side
        self.quantity = quantity
        self.mark_price = mark_price
        self.rate = rate
        self.amount = amount

    def __repr__(self) -> str:
        return (
            f"FundingPayment(timestamp={self.timestamp}, symbol={self.symbol!r}, side={self.side.value!r}, "
            f"quantity={self.quantity!r}, mark_price={self.mark_price!r}, rate={self.rate!r}, "
            f"amount={self.amount!r})"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "timestamp": self.timestamp,
            "symbol": self.symbol,
            "side": self.side.value,
            "quantity": self.quantity,
            "mark_price": self.mark_price,
            "rate": self.rate,
            "amount": self.amount,
        }


def funding_due(
    portfolio: Portfolio, symbol: str, timestamp: int, rate: float, mark_price: float
) -> list[tuple[Position, FundingPayment]]:
    """The rule: what every open leg of ``symbol`` pays (< 0) or receives at one funding event,
    ``-position value at the mark * rate * side`` (long pays a positive rate). Books nothing."""
    due: list[tuple[Position, FundingPayment]] = []
    if mark_price <= 0:
        return due
    for position in portfolio.ledger.positions.values():
        if position.symbol != symbol or position.quantity <= 0:
            continue
        value = position.notional(
            mark_price
        )  # settlement currency: USDT (linear) or coins (inverse)
        amount = -value * rate * position.side.sign
        due.append(
            (
                position,
                FundingPayment(
                    timestamp, symbol, position.side, position.quantity, mark_price, rate, amount
                ),
            )
        )
    return due


def book_funding(portfolio: Portfolio, position: Position, payment: FundingPayment) -> None:
    """Book one leg's funding: into the wallet at once, and onto the position for its trade."""
    position.funding += payment.amount
    portfolio.book_funding(payment.amount)


def settle_funding(
    portfolio: Portfolio, symbol: str, timestamp: int, rate: float, mark_price: float
) -> list[FundingPayment]:
    """Book one funding event of ``symbol`` on every open leg; returns the payments made."""
    payments: list[FundingPayment] = []
    for position, payment in funding_due(portfolio, symbol, timestamp, rate, mark_price):
        book_funding(portfolio, position, payment)
        payments.append(payment)
    return payments


class FundingSchedule:
    """The recorded funding events of one symbol, settled in time order.

    ``times`` are the funding times (epoch ms, ascending), ``rates`` the rate of each, and
    ``marks`` (optional, same length) the mark price at each time; a mark of 0 or NaN means
    "not recorded": then the caller's price at that moment is used.
    """

    def __init__(
        self, symbol: str, times: list[int], rates: list[float], marks: list[float] | None = None
    ) -> None:
        if len(times) != len(rates) or (marks is not None and len(marks) != len(times)):
            raise ValueError(
                f"funding schedule of {symbol}: times, rates and marks differ in length"
            )
        self.symbol = symbol
        self.times = times
        self.rates = rates
        self.marks = marks
        self.cursor = 0
        self.payments: list[FundingPayment] = []
        self.next_ms = times[0] if times else NEVER_MS

    def add(self, timestamp: int, rate: float, mark: float = math.nan) -> None:
        """Append an event learnt as the run goes (paper mode: from the venue), after the others;
        ``mark`` NaN or 0: the caller's price at settlement is used."""
        if self.times and timestamp <= self.times[-1]:
            return  # known already
        if self.marks is None:
            self.marks = [math.nan] * len(self.times)
        self.times.append(timestamp)
        self.rates.append(rate)
        self.marks.append(mark)
        if self.cursor == len(self.times) - 1:
            self.next_ms = timestamp

    def skip_until(self, timestamp: int) -> None:
        """Forget the events before ``timestamp`` (before the run starts nothing is held)."""
        cursor = self.cursor
        times = self.times
        while cursor < len(times) and times[cursor] < timestamp:
            cursor += 1
        self.cursor = cursor
        self.next_ms = times[cursor] if cursor < len(times) else NEVER_MS

    def settle(self, portfolio: Portfolio, now_ms: int, price: float) -> None:
        """Settle every event at or before ``now_ms``; ``price`` is the traded price now."""
        cursor = self.cursor
        times = self.times
        marks = self.marks
        while cursor < len(times) and times[cursor] <= now_ms:
            mark = price
            if marks is not None:
                recorded = marks[cursor]
                if recorded > 0:  # NaN compares False: not recorded
                    mark = recorded
            self.payments.extend(
                settle_funding(portfolio, self.symbol, times[cursor], self.rates[cursor], mark)
            )
            cursor += 1
        self.cursor = cursor
        self.next_ms = times[cursor] if cursor < len(times) else NEVER_MS
