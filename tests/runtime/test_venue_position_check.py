"""The mid-run venue position check (``engine/venue_positions.py``): when it acts and when not.

A real engine and portfolio (``tests/engine/harness.py``) hold a 1 BTC long; a small venue stand-in
answers ``fetch_positions`` and ``fetch_balance`` as a gateway does. The end-to-end cases (a
close by hand, a liquidation) run on the Bybit and OKX sandboxes in
``tests/exchanges/test_venue_live_e2e.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses

from metaexpert.core.account import Account
from metaexpert.core.enums import PositionSide
from metaexpert.engine.venue_positions import VenuePositionCheck
from metaexpert.exchanges.errors import ExchangeUnavailableError
from tests.engine.harness import SYMBOL, make_harness


class _Venue:
    def __init__(self, positions, balance: float) -> None:
        self.positions = positions
        self.balance = balance
        self.fail = False
        self.calls = 0

    async def fetch_positions(self, symbols):
        self.calls += 1
        if self.fail:
            raise ExchangeUnavailableError(
                "timed out", exchange="bybit", operation="fetch_positions"
            )
        return list(self.positions)

    async def fetch_balance(self, currency):
        return Account(currency=currency, balance=self.balance, equity=self.balance)


def _held_long():
    harness = make_harness(market_type="futures", contract_type="linear", leverage=2)
    harness.place("buy", 1.0)
    harness.bar(100, 101, 99, 100)
    (position,) = harness.portfolio.positions()
    assert position.quantity == 1.0
    return harness, position


def _check(harness, venue, unsynced=frozenset()):
    check = VenuePositionCheck(venue, [SYMBOL], "USDT", interval_ms=0)
    return check, lambda: asyncio.run(check.check(harness.engine, unsynced))


def test_position_check_with_one_disagreement_then_agreement_changes_nothing():
    """The venue closed the leg a moment before our stop's fill was booked: the next check
    agrees again (the fill arrived), and nothing was taken from the venue."""
    harness, position = _held_long()
    venue = _Venue([], balance=5.0)
    check, run = _check(harness, venue)
    run()  # noted only
    venue.positions = [dataclasses.replace(position)]
    run()
    assert check.changes == 0 and harness.portfolio.positions() == [position]
    assert harness.account.balance != 5.0


def test_position_check_with_the_same_disagreement_twice_takes_the_venue_leg_and_wallet():
    harness, _ = _held_long()
    venue = _Venue([], balance=9_000.0)
    check, run = _check(harness, venue)
    run()
    assert check.changes == 0 and len(harness.portfolio.positions()) == 1
    run()
    assert check.changes == 1 and harness.portfolio.positions() == []
    assert harness.account.balance == 9_000.0 and harness.account.equity == 9_000.0


def test_position_check_with_a_partly_reduced_leg_keeps_the_venue_quantity():
    harness, position = _held_long()
    venue = _Venue([dataclasses.replace(position, quantity=0.4)], balance=9_990.0)
    check, run = _check(harness, venue)
    run()
    run()
    (kept,) = harness.portfolio.positions()
    assert (kept.side, kept.quantity, check.changes) == (PositionSide.LONG, 0.4, 1)


def test_position_check_with_an_order_not_brought_up_to_date_waits():
    """An order of the symbol whose lookup failed (or that waits in the durable queue) may hold
    an unbooked fill: no disagreement is counted while it is so."""
    harness, _ = _held_long()
    venue = _Venue([], balance=9_000.0)
    check, run = _check(harness, venue, unsynced={SYMBOL})
    for _ in range(4):
        run()
    assert check.changes == 0 and len(harness.portfolio.positions()) == 1


def test_position_check_with_the_venue_unreachable_logs_and_goes_on(caplog):
    harness, _ = _held_long()
    venue = _Venue([], balance=9_000.0)
    venue.fail = True
    check, run = _check(harness, venue)
    with caplog.at_level("WARNING", logger="metaexpert.runtime"):
        run()
        run()
    assert venue.calls == 2 and check.changes == 0
    assert "could not be read for the check" in caplog.text


def test_position_check_with_an_interval_reads_the_venue_once_per_interval():
    harness, _ = _held_long()
    venue = _Venue([], balance=9_000.0)
    check = VenuePositionCheck(venue, [SYMBOL], "USDT", interval_ms=30_000)
    for _ in range(3):  # the harness's clock stands still: one read
        asyncio.run(check.check(harness.engine))
    assert venue.calls == 1
    harness.portfolio.set_time(harness.portfolio.now_ms + 30_000)
    asyncio.run(check.check(harness.engine))
    assert venue.calls == 2
