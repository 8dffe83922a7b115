"""Slippage models for simulated taker fills (market, stop and take-profit market orders)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from metaexpert.core.enums import OrderSide


class SlippageModel(ABC):
    @abstractmethod
    def adjust(self, side: OrderSide, price: float, quantity: float, bar_volume: float) -> float:
        """The executed price for a taker fill expected at ``price``."""


class NoSlippage(SlippageModel):
    def adjust(self, side: OrderSide, price: float, quantity: float, bar_volume: float) -> float:
        return price


class FixedPercentSlippage(SlippageModel):
    """Every taker fill is ``percent`` worse than the expected price."""

    def __init__(self, percent: float) -> None:
        if percent < 0:
            raise ValueError(f"slippage percent must be >= 0, got {percent}")
        self.fraction = percent / 100.0

    def adjust(self, side: OrderSide, price: float, quantity: float, bar_volume: float) -> float:
        return (
            price * (1.0 + self.fraction)
            if side is OrderSide.BUY
            else price * (1.0 - self.fraction)
        )


class VolumeSlippage(SlippageModel):
    """Impact grows with the order's share of the bar's volume.

    slippage % = base_percent + impact_percent * (quantity / bar_volume), capped at
    ``max_percent``; a bar without volume uses the cap (no liquidity to absorb the order).
    """

    def __init__(
        self, base_percent: float = 0.0, impact_percent: float = 10.0, max_percent: float = 5.0
    ) -> None:
        if min(base_percent, impact_percent, max_percent) < 0:
            raise ValueError("volume slippage parameters must be >= 0")
        self.base = base_percent / 100.0
        self.impact = impact_percent / 100.0
        self.cap = max_percent / 100.0

    def adjust(self, side: OrderSide, price: float, quantity: float, bar_volume: float) -> float:
        share = quantity / bar_volume if bar_volume > 0 else float("inf")
        fraction = min(self.base + self.impact * share, self.cap)
        return price * (1.0 + fraction) if side is OrderSide.BUY else price * (1.0 - fraction)


def slippage_from_settings(
    kind: str, percent: float, impact_percent: float, max_percent: float
) -> SlippageModel:
    if kind == "none" or (kind == "fixed" and percent == 0):
        return NoSlippage()
    if kind == "fixed":
        return FixedPercentSlippage(percent)
    if kind == "volume":
        return VolumeSlippage(percent, impact_percent, max_percent)
    raise ValueError(f"unknown slippage model {kind!r}: expected none, fixed or volume")
