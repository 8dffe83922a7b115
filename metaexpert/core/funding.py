"""The funding rate of a perpetual as the venue states it, in the venue-neutral core form.

A venue announces the rate of the coming funding time (Binance ``premiumIndex``: the
predicted ``lastFundingRate`` and ``nextFundingTime``) and publishes the rate it settled at
each past funding time (``fundingRate`` history, with the mark price it used). Paper runs
book funding from these (``metaexpert.engine.venue_funding``); the gateway maps ccxt's
``fetchFundingRate`` / ``fetchFundingRateHistory`` into this type so no layer above it sees ccxt.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FundingRate:
    """One funding rate of ``symbol``: ``rate`` per period (0.0001 = 0.01 %, > 0: longs pay).

    ``funding_time`` is the funding time the rate settles (an announcement: the coming one)
    or settled at (history), epoch ms; ``mark_price`` the mark price the venue settles with
    (0.0 when the venue does not say); ``timestamp`` when the venue stated it (0: unknown).
    """

    symbol: str
    funding_time: int
    rate: float
    mark_price: float = 0.0
    timestamp: int = 0
