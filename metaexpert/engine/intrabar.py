"""The documented intrabar path and first-touch arithmetic for simulated fills.

A bar is replayed as a path of prices. With ``OPEN_NEAREST_FIRST`` (default) the path is
open -> the extreme nearer to the open -> the other extreme -> close; on a tie the high
comes first. A position on the path is ``segment index + fraction`` (0.0 is the open), so
every trigger in a bar has a place in time and the earliest one wins: when a stop and a
target both lie inside one bar, the one the path reaches first fills and the other is
cancelled (OCO). A tick is a path of one point.

Fill prices:
- resting limit orders fill at their limit price (maker), also when the bar opens beyond
  it (the resting order is matched on the way);
- a limit order that is marketable when first seen fills at the current price (taker);
- stop and take-profit market orders fill at their trigger price, or at the current price
  when that is already beyond the trigger (a gap through a stop fills at the open).
"""

from __future__ import annotations

from metaexpert.core.enums import IntrabarPath


def bar_path(
    open_: float, high: float, low: float, close: float, mode: IntrabarPath
) -> tuple[float, ...]:
    if mode is IntrabarPath.OPEN_HIGH_LOW_CLOSE:
        return (open_, high, low, close)
    if mode is IntrabarPath.OPEN_LOW_HIGH_CLOSE:
        return (open_, low, high, close)
    if high - open_ <= open_ - low:
        return (open_, high, low, close)
    return (open_, low, high, close)


def price_at(path: tuple[float, ...], position: float) -> float:
    index = int(position)
    if index >= len(path) - 1:
        return path[-1]
    fraction = position - index
    start = path[index]
    return start + fraction * (path[index + 1] - start)


def first_touch(
    path: tuple[float, ...], start: float, level: float, upward: bool
) -> tuple[float, float, bool] | None:
    """Where the path, from ``start`` on, first reaches ``level``.

    ``upward`` True means the condition is price >= level, False price <= level. Returns
    ``(position, price, already_through)``: ``already_through`` is True when the price at
    ``start`` already satisfies the condition (the caller decides the fill price then).
    """
    current = price_at(path, start)
    if (current >= level) if upward else (current <= level):
        return start, current, True
    last = len(path) - 1
    index = int(start)
    previous_position, previous = start, current
    for segment in range(index, last):
        end = path[segment + 1]
        if (end >= level) if upward else (end <= level):
            fraction = (level - previous) / (end - previous)
            return previous_position + (segment + 1 - previous_position) * fraction, level, False
        previous_position, previous = float(segment + 1), end
    return None


def trailing_touch(
    path: tuple[float, ...],
    start: float,
    water: float | None,
    callback_fraction: float,
    activation: float | None,
    protects_long: bool,
) -> tuple[tuple[float, float, bool] | None, float | None]:
    """Walk a trailing stop along the path.

    A trailing stop protecting a long follows the highest price since activation and
    triggers when the price falls ``callback_fraction`` below it (mirror for shorts).
    Returns ``(touch, water)``: the trigger as in ``first_touch`` (or None) and the
    water mark at the trigger or at the end of the path.
    """
    points = [(start, price_at(path, start))] + [
        (float(segment + 1), path[segment + 1]) for segment in range(int(start), len(path) - 1)
    ]

    def favourable(price: float, reference: float) -> bool:
        return price >= reference if protects_long else price <= reference

    def stop_of(mark: float) -> float:
        return mark * (1 - callback_fraction) if protects_long else mark * (1 + callback_fraction)

    def breached(price: float, stop: float) -> bool:
        return price <= stop if protects_long else price >= stop

    position, current = points[0]
    if water is None and (activation is None or favourable(current, activation)):
        water = current
    if water is not None:
        water = max(water, current) if protects_long else min(water, current)
        if breached(current, stop_of(water)):
            return (position, current, True), water
    for next_position, price in points[1:]:
        if water is None:
            if favourable(price, activation):  # type: ignore[arg-type]
                water = price
        elif favourable(price, current):
            water = max(water, price) if protects_long else min(water, price)
        else:
            stop = stop_of(water)
            if breached(price, stop):
                fraction = (stop - current) / (price - current)
                return (position + (next_position - position) * fraction, stop, False), water
        position, current = next_position, price
    return None, water
