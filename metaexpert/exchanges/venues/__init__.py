"""Per-exchange differences, one small module per venue with the same functions each."""

from __future__ import annotations

from types import ModuleType

from metaexpert.core.enums import Exchange
from metaexpert.exchanges.venues import binance, bybit, okx

_VENUES: dict[Exchange, ModuleType] = {
    Exchange.BINANCE: binance,
    Exchange.BYBIT: bybit,
    Exchange.OKX: okx,
}


def venue_for(exchange: Exchange | str) -> ModuleType:
    """The venue module for ``exchange`` (``binance``, ``bybit`` or ``okx``)."""
    try:
        return _VENUES[Exchange(str(exchange).lower())]
    except ValueError:
        supported = ", ".join(member.value for member in Exchange)
        raise ValueError(f"unknown exchange {exchange!r}: supported are {supported}") from None


__all__ = ["venue_for"]
