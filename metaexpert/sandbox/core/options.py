"""Option contracts priced from their underlying's replay (Black-Scholes, no rates, one volatility).

Why a model and not recorded option prices: none are recorded. Each option's premium is the
Black-Scholes value at the underlying's replayed price, ``SandboxConfig.option_volatility`` (a
flat annual volatility) and the time left to expiry in market time; at and after expiry it is the
intrinsic value. A replayed bar of the underlying becomes the option's price path through the
premium at the bar's open, high, low and close (the premium is monotone in the underlying, so the
bar's extremes map to the premium's). Option positions are booked like linear contracts of one
unit settled in the quote coin (PnL = amount * (premium - entry)); buyers pay the full premium
(leverage 1); expiry does not settle positions automatically (they keep their intrinsic value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from metaexpert.sandbox.core.matching import BarPrices

YEAR_MS = 365.0 * 24 * 3_600_000


@dataclass(frozen=True, slots=True)
class OptionSpec:
    underlying: str  # the candle symbol replayed for the underlying (``BTCUSDT``)
    strike: float
    expiry_ms: int
    is_call: bool
    in_base: bool = False  # premium quoted in the base coin (OKX: BTC per BTC-USD option)


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def premium(spec: OptionSpec, underlying: float, now_ms: int, volatility: float) -> float:
    """Black-Scholes value (r = 0) of one option on one unit of the underlying (in the quote
    coin, or in the base coin when ``spec.in_base``)."""
    value = _premium(spec, underlying, now_ms, volatility)
    return value / underlying if spec.in_base and underlying > 0 else value


def _premium(spec: OptionSpec, underlying: float, now_ms: int, volatility: float) -> float:
    intrinsic = (
        max(underlying - spec.strike, 0.0) if spec.is_call else max(spec.strike - underlying, 0.0)
    )
    years = (spec.expiry_ms - now_ms) / YEAR_MS
    if years <= 0 or volatility <= 0 or underlying <= 0:
        return intrinsic
    spread = volatility * math.sqrt(years)
    d1 = (math.log(underlying / spec.strike) + 0.5 * spread * spread) / spread
    d2 = d1 - spread
    if spec.is_call:
        return underlying * _cdf(d1) - spec.strike * _cdf(d2)
    return spec.strike * _cdf(-d2) - underlying * _cdf(-d1)


def delta(spec: OptionSpec, underlying: float, now_ms: int, volatility: float) -> float:
    years = (spec.expiry_ms - now_ms) / YEAR_MS
    if years <= 0 or volatility <= 0:
        itm = underlying > spec.strike if spec.is_call else underlying < spec.strike
        return (1.0 if spec.is_call else -1.0) if itm else 0.0
    spread = volatility * math.sqrt(years)
    d1 = (math.log(underlying / spec.strike) + 0.5 * spread * spread) / spread
    return _cdf(d1) if spec.is_call else _cdf(d1) - 1.0


def premium_path(spec: OptionSpec, bar: BarPrices, volatility: float) -> BarPrices:
    values = [
        premium(spec, price, bar.time, volatility)
        for price in (bar.open, bar.high, bar.low, bar.close)
    ]
    return BarPrices(values[0], max(values), min(values), values[3], bar.time)


def last_friday(year: int, month: int) -> int:
    """08:00 UTC of the month's last Friday (the venues' monthly expiry), in ms."""
    from datetime import UTC, datetime, timedelta

    first_next = datetime(year + month // 12, month % 12 + 1, 1, 8, tzinfo=UTC)
    day = first_next - timedelta(days=1)
    while day.weekday() != 4:
        day -= timedelta(days=1)
    return int(day.timestamp() * 1000)


def listed_options(
    underlying: str, start_ms: int, price: float, step: float, *, in_base: bool = False
) -> dict[str, OptionSpec]:
    """A call and a put at three strikes around ``price`` (``step`` apart), expiring on the last
    Friday of the month after next; keyed by ``(expiry, strike, is_call)`` names the venue formats."""
    from datetime import UTC, datetime

    start = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    month = start.month + 2
    expiry = last_friday(start.year + (month - 1) // 12, (month - 1) % 12 + 1)
    centre = round(price / step) * step
    result = {}
    for strike in (centre - step, centre, centre + step):
        for is_call in (True, False):
            result[f"{int(expiry)}:{int(strike)}:{'C' if is_call else 'P'}"] = OptionSpec(
                underlying, strike, expiry, is_call, in_base
            )
    return result


def replay_start(config: object, candle: str) -> tuple[int, float]:
    """Market time and price the replay starts at (as ``SandboxExchange`` aligns it), read from
    the candle file (cached, so the exchange reads it once)."""
    import numpy as np

    from metaexpert.core.timeframe import Timeframe
    from metaexpert.sandbox.core.market_data import _load_candles, find_candle_file

    timeframe = Timeframe.parse(config.timeframe)
    columns = _load_candles(str(find_candle_file(config.data_dir, candle, timeframe)))
    stamps, closes = columns[0], columns[4]
    start = config.start_time_ms
    if start is None:
        start = int(stamps[min(config.warmup_bars, len(stamps) - 1)])
    index = max(int(np.searchsorted(stamps, start, side="right")) - 1, 0)
    return int(stamps[index]) + timeframe.milliseconds, float(closes[index])
