"""Per-exchange differences, one small module per venue with the same functions each."""

from __future__ import annotations

from types import ModuleType
from typing import cast

from metaexpert.core.enums import Exchange
from metaexpert.exchanges.venues import binance, bybit, okx
from metaexpert.exchanges.venues.base import VenueModule

_VENUES: dict[Exchange, ModuleType] = {
    Exchange.BINANCE: binance,
    Exchange.BYBIT: bybit,
    Exchange.OKX: okx,
}


def venue_for(exchange: Exchange | str) -> VenueModule:
    """The venue module for ``exchange`` (``binance``, ``bybit`` or ``okx``)."""
    try:
        return cast(VenueModule, _VENUES[Exchange(str(exchange).lower())])
    except ValueError:
        supported = ", ".join(member.value for member in Exchange)
        raise ValueError(f"unknown exchange {exchange!r}: supported are {supported}") from None


__all__ = ["VenueModule", "venue_for"]
