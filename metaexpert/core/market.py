"""Market data value types: Bar, Tick, OrderBook, and the static description of a market."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from metaexpert.core.enums import ContractType, MarketType
from metaexpert.core.errors import DataError

# Steps that are a power of ten (1e-8, 0.001, 1) mapped to their exact reciprocal: for them
# ``steps / reciprocal`` is the float nearest to the decimal ``steps * 10**-k``, which is
# what ``round(steps * step, 12)`` aims at, exactly (round leaves noise past 17 digits) and
# without a decimal conversion per call.
_DECIMAL_STEP_RECIPROCALS: Final = {float(f"1e-{k}"): float(10**k) for k in range(13)}


@dataclass(slots=True)
class Bar:
    """One OHLCV candle. ``timestamp`` is the bar's open time (UTC epoch ms)."""

    symbol: str
    timeframe: str
    timestamp: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def __post_init__(self) -> None:
        if not (self.low <= min(self.open, self.close) and max(self.open, self.close) <= self.high):
            raise DataError(
                f"malformed bar {self.symbol} {self.timeframe} at {self.timestamp}: "
                f"open={self.open} high={self.high} low={self.low} close={self.close}"
            )


@dataclass(slots=True)
class Tick:
    """A trade print or a best bid/ask update. ``price`` is the last trade price; ``mark_price``
    the venue's mark price where its ticker gives one (derivatives and options)."""

    symbol: str
    timestamp: int
    price: float
    quantity: float = 0.0
    bid: float | None = None
    ask: float | None = None
    is_buyer_maker: bool | None = None
    mark_price: float | None = None


@dataclass(slots=True)
class OrderBook:
    """A snapshot of price levels. Bids are sorted high to low, asks low to high."""

    symbol: str
    timestamp: int
    bids: list[tuple[float, float]] = field(default_factory=list)
    asks: list[tuple[float, float]] = field(default_factory=list)
    sequence: int | None = None

    @property
    def best_bid(self) -> float | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0][0] if self.asks else None

    @property
    def mid(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0][0] + self.asks[0][0]) / 2

    @property
    def spread(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return self.asks[0][0] - self.bids[0][0]

    @property
    def spread_pct(self) -> float | None:
        mid = self.mid
        spread = self.spread
        if mid is None or spread is None or mid == 0:
            return None
        return spread / mid * 100.0


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """Static facts about a tradable market that sizing, fees and margin depend on.

    ``symbol`` is the user's exchange-native form (``BTCUSDT``). For inverse contracts
    quantity is in contracts of ``contract_size`` quote units (USD); for everything else
    quantity is in the base asset.
    """

    symbol: str
    base: str
    quote: str
    market_type: MarketType = MarketType.SPOT
    contract_type: ContractType | None = None
    settle: str | None = None
    contract_size: float = 1.0
    amount_step: float = 0.0
    price_step: float = 0.0
    min_amount: float = 0.0
    max_amount: float = math.inf
    min_notional: float = 0.0
    max_leverage: float = 125.0
    maker_fee: float = 0.001
    taker_fee: float = 0.001
    maintenance_margin_rate: float = 0.005

    @property
    def is_inverse(self) -> bool:
        return self.contract_type is ContractType.INVERSE

    @property
    def is_derivative(self) -> bool:
        return self.market_type is not MarketType.SPOT

    @property
    def settlement_currency(self) -> str:
        if self.settle:
            return self.settle
        return self.base if self.is_inverse else self.quote

    def round_amount(self, amount: float) -> float:
        """Round an amount down to the market's step (never up: never more than asked)."""
        if self.amount_step <= 0:
            return amount
        ratio = amount / self.amount_step
        # A tolerance of a few float ulps: 2.24767351 / 1e-8 is 224767350.99999997 in floating
        # point, which must stay 224767351 steps, or every rounding loses a step (and leaves
        # dust). Capped well below a step, so a huge amount is never rounded up to the next one.
        steps = math.floor(ratio + min(max(1e-9, abs(ratio) * 1e-15), 1e-3))
        # Past about 1e12 steps a float ulp of the ratio exceeds the tolerance's cap:
        # 262144.56099816 / 1e-8 is 26214456099815.996. The next step is taken when its
        # amount still does not exceed ``amount``.
        if self._amount_of(steps + 1) <= amount:
            steps += 1
        return self._amount_of(steps)

    def _amount_of(self, steps: int) -> float:
        """``steps`` amount steps as the float nearest to the decimal amount they make."""
        reciprocal = _DECIMAL_STEP_RECIPROCALS.get(self.amount_step)
        if reciprocal is not None:
            return steps / reciprocal
        return round(steps * self.amount_step, 12)

    def round_price(self, price: float) -> float:
        if self.price_step <= 0:
            return price
        return round(round(price / self.price_step) * self.price_step, 12)

    def notional(self, amount: float, price: float) -> float:
        """Value of ``amount`` at ``price`` in the quote currency."""
        if self.is_inverse:
            return amount * self.contract_size
        return amount * price * self.contract_size


def split_symbol(
    symbol: str, quotes: tuple[str, ...] = ("USDT", "USDC", "BUSD", "FDUSD", "USD", "BTC", "ETH")
) -> tuple[str, str]:
    """Split an exchange-native symbol (``BTCUSDT``, ``BTC/USDT``, ``BTC-USDT``) into base and quote."""
    text = symbol.upper().split(":")[0]
    for separator in ("/", "-", "_"):
        if separator in text:
            base, quote = text.split(separator)[:2]
            return base, quote
    for quote in quotes:
        if text.endswith(quote) and len(text) > len(quote):
            return text[: -len(quote)], quote
    raise ValueError(f"cannot split symbol {symbol!r} into base and quote")
