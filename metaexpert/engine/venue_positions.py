"""Live derivatives: the venue's positions checked against the engine's while the run trades.

Why: a position can change at the venue without any order of this run: a liquidation, a close
by hand on the venue's website, an auto-deleveraging. Before this check the engine learnt of it
only at the next start; until then it kept valuing a position that no longer existed, kept its
stop and target open at the venue, and sized new orders on equity the account did not have
(found with the Binance sandbox: a position closed by another client stayed in the engine for
the whole run).

How: at most once per ``interval_ms`` of market time, after the step's orders were polled and
settled, the venue's positions are read and compared leg by leg with the engine's. A fill of
our own can be on its way (the venue closed the position by our stop a moment before the poll
booked the stop's fill), so one disagreement is only noted; the same venue quantity seen again
at the next check, after another poll that brought every order of the symbol up to date (none
failed to load, none waits in the durable queue), is a change from outside. Then the venue
wins, as at a restart (``engine/persistence.py``): the engine takes the venue's leg (or
drops it), cancels the stop and target of a leg that is gone, sets its wallet to the venue's
(the realised PnL and fees of a close the engine did not make), and records a
``position_mismatch`` risk event.
"""

from __future__ import annotations

import logging
from typing import Any

from metaexpert.core.enums import PositionSide, RiskEventAction
from metaexpert.core.errors import PermanentError, RecoverableError
from metaexpert.core.events import RiskEvent
from metaexpert.core.position import Position
from metaexpert.engine.engine import Engine

logger = logging.getLogger("metaexpert.runtime")

_EPSILON = 1e-12

#: Market time between two checks: an outside change is acted on within two of them.
DEFAULT_INTERVAL_MS = 30_000


def quantities_differ(ours: float, theirs: float) -> bool:
    return abs(ours - theirs) > max(1e-9, abs(theirs) * 1e-6)


def take_venue_leg(
    engine: Engine, key: tuple[str, PositionSide], theirs: Position | None, reason: str
) -> bool:
    """The venue wins: ``key``'s leg becomes the venue's (``theirs``), or is dropped when the
    venue holds none; the reason is logged and recorded as a ``position_mismatch`` risk event.
    Returns whether the leg is still held. Used while trading (below) and at a restart
    (``engine/persistence.py``)."""
    logger.error(reason)
    engine._record_risk(
        RiskEvent(
            rule="reconciliation",
            action=RiskEventAction.POSITION_MISMATCH,
            timestamp=engine.portfolio.now_ms,
            symbol=key[0],
            reason=reason,
        )
    )
    ledger = engine.portfolio.ledger.positions
    if theirs is not None and theirs.quantity > _EPSILON:
        ledger[key] = theirs
        return True
    ledger.pop(key, None)
    return False


class VenuePositionCheck:
    """Compares the venue's derivative positions with the engine's during a live run."""

    def __init__(
        self,
        gateway: Any,
        symbols: list[str],
        currency: str,
        *,
        interval_ms: int = DEFAULT_INTERVAL_MS,
    ) -> None:
        self.gateway = gateway
        self.symbols = list(symbols)
        self.currency = currency
        self.interval_ms = interval_ms
        self.changes = 0  # legs changed at the venue outside this run, acted on
        self._next_ms: int | None = None
        self._noted: dict[tuple[str, PositionSide], float] = {}

    async def check(
        self, engine: Engine, unsynced: set[str] | frozenset[str] = frozenset()
    ) -> None:
        """``unsynced``: symbols with an order the last poll could not bring up to date (the
        broker's ``unsynced_symbols``); a disagreement there is not counted, a fill may be due."""
        portfolio = engine.portfolio
        now = portfolio.now_ms
        if self._next_ms is not None and now < self._next_ms:
            return
        self._next_ms = now + self.interval_ms
        try:
            positions = await self.gateway.fetch_positions(self.symbols)
        except (PermanentError, RecoverableError) as error:
            # The check is a safety net: the next one tries again, trading goes on.
            logger.warning("the venue's positions could not be read for the check: %s", error)
            return
        venue: dict[tuple[str, PositionSide], Position] = {
            (position.symbol, position.side): position
            for position in positions
            if position.quantity > _EPSILON
        }
        ledger = portfolio.ledger.positions
        keys = set(venue) | {key for key, leg in ledger.items() if leg.quantity > _EPSILON}
        changed = False
        for key in sorted(keys, key=str):
            ours = ledger[key].quantity if key in ledger else 0.0
            theirs = venue[key].quantity if key in venue else 0.0
            if not quantities_differ(ours, theirs) or key[0] in unsynced:
                self._noted.pop(key, None)
                continue
            noted = self._noted.get(key)
            if noted is None or quantities_differ(noted, theirs):
                self._noted[key] = theirs  # perhaps a fill of ours not booked yet: look again
                continue
            del self._noted[key]
            self.changes += 1
            reason = (
                f"{key[0]} {key[1]} position changed at the venue outside this run (a "
                f"liquidation, or a trade not made by this expert): {theirs} at the venue, "
                f"{ours} in the engine; the venue's is kept"
            )
            if not take_venue_leg(engine, key, venue.get(key), reason):
                engine._cancel_brackets(key, "its position was closed at the venue")
            changed = True
        if changed:
            try:
                account = await self.gateway.fetch_balance(self.currency)
            except (PermanentError, RecoverableError) as error:
                logger.warning("the venue's wallet could not be read after the change: %s", error)
                portfolio.revalue()
                return
            delta = account.balance - portfolio.account.balance
            portfolio.account.balance = account.balance
            portfolio.realized_pnl += delta
            logger.warning(
                "wallet set to the venue's %r %s (%+r: the close the engine did not make)",
                account.balance,
                self.currency,
                delta,
            )
        portfolio.revalue()
