"""The simulated broker: matches orders against bars and ticks (backtest and paper mode).

Validation mirrors what an exchange refuses (unknown symbol, filters, insufficient
balance or margin, reduce-only that would not reduce, spot short sales). Matching follows
``metaexpert.engine.intrabar``. Market orders placed while a bar is being handled fill at
the next bar's open (``fill_market_on="next_open"``, the default) or at once at the last
price (``"close"``); on ticks they fill at the next tick. Brackets are OCO groups: when
one member fills, the others are cancelled, so a stop and a target never both fire.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from metaexpert.core.enums import (
    IntrabarPath,
    LiquidityRole,
    MarginMode,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    TimeInForce,
)
from metaexpert.core.order import Order
from metaexpert.core.position import Position, liquidation_price_cross
from metaexpert.engine.broker import Broker, BrokerListener
from metaexpert.engine.intrabar import bar_path, first_touch, price_at, trailing_touch
from metaexpert.engine.portfolio import Portfolio
from metaexpert.engine.slippage import NoSlippage, SlippageModel

_EPSILON: Final = 1e-12
_OPEN_STATUSES: Final = frozenset({OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED})
# Not Final: mypyc (2.4.1) leaves a Final tuple of infinities unset ("value for final name
# was not set" at the first use).
_NO_BAND = (math.inf, -math.inf)  # no bar is inside it: always take the full test


def _matched_every_bar(order: Order) -> bool:
    """Market orders fill and IOC/FOK/GTD orders expire: never quiet while one is open."""
    return (
        order.order_type is OrderType.MARKET
        or order.time_in_force is not TimeInForce.GTC
        or order.expire_at is not None
    )


@dataclass(slots=True)
class _Event:
    position: float
    price: float
    liquidity: LiquidityRole
    order: Order | None = None
    liquidated: Position | None = None
    trigger_only: bool = False
    water: float | None = None

    # Written out so that mypyc compiles it (see Order.__init__); same defaults as above.
    def __init__(
        self,
        position: float,
        price: float,
        liquidity: LiquidityRole,
        order: Order | None = None,
        liquidated: Position | None = None,
        trigger_only: bool = False,
        water: float | None = None,
    ) -> None:
        self.position = position
        self.price = price
        self.liquidity = liquidity
        self.order = order
        self.liquidated = liquidated
        self.trigger_only = trigger_only
        self.water = water


class SimulatedBroker(Broker):
    def __init__(
        self,
        portfolio: Portfolio,
        listener: BrokerListener,
        *,
        intrabar_path: IntrabarPath = IntrabarPath.OPEN_NEAREST_FIRST,
        fill_market_on: str = "next_open",
        slippage: SlippageModel | None = None,
        max_volume_participation: float | None = None,
        liquidation: bool = True,
    ) -> None:
        if fill_market_on not in ("next_open", "close"):
            raise ValueError(
                f"fill_market_on must be 'next_open' or 'close', got {fill_market_on!r}"
            )
        self.portfolio = portfolio
        self.listener = listener
        self.intrabar_path = intrabar_path
        self.fill_market_on = fill_market_on
        self.slippage = slippage or NoSlippage()
        self.participation = max_volume_participation
        self.liquidation = liquidation
        self._open: dict[str, list[Order]] = {}
        self._fresh: set[str] = set()
        self._passive: set[str] = (
            set()
        )  # limit orders not marketable at the price they were placed at
        self._created_at: dict[str, float] = {}
        self._water: dict[str, float] = {}
        self._matching_symbol: str | None = None
        self._cursor = 0.0
        self._bar_volume = 0.0
        self._filled_this_bar: set[str] = set()
        self._open_count = 0
        # Per symbol, the open interval (low, high) a bar must stay strictly inside for no
        # resting order to trigger and no trailing mark to move; dropped whenever the book changes.
        self._bands: dict[str, tuple[float, float]] = {}
        # The mark-price bar of the bar being matched, where mark candles exist (perpetuals): it,
        # not the traded price, decides liquidations, as on the venues. None: the traded bar does.
        self._mark_path: tuple[float, ...] | None = None
        self._mark_low = 0.0
        self._mark_high = 0.0
        self.on_reject: Callable[[Order, str], None] | None = None

    # ------------------------------------------------------------------ interface
    @property
    def has_work(self) -> bool:
        return self._open_count > 0

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        if symbol is not None:
            return [o for o in self._open.get(symbol, ()) if o.status.is_open]
        return [o for orders in self._open.values() for o in orders if o.status.is_open]

    def submit(self, order: Order) -> None:
        now = self.portfolio.now_ms
        order.created_at = order.created_at or now
        reason = self._validate(order)
        if reason:
            order.reject(reason, now)
            self.listener.on_order_update(order, reason)
            return
        order.submit(now)
        self._open.setdefault(order.symbol, []).append(order)
        self._open_count += 1
        self._bands.pop(order.symbol, None)
        self.portfolio.orders[order.client_order_id] = order
        self._fresh.add(order.client_order_id)
        if self._matching_symbol == order.symbol:
            self._created_at[order.client_order_id] = self._cursor
        elif order.order_type is OrderType.LIMIT and not self._marketable(
            order, self.portfolio.last_price(order.symbol)
        ):
            # Placed between bars at a price it does not cross: it rests in the book, so a
            # gap through it at the next open still fills at the limit (maker).
            self._passive.add(order.client_order_id)
        self.listener.on_order_update(order)
        if (
            order.order_type is OrderType.MARKET
            and self.fill_market_on == "close"
            and self._matching_symbol != order.symbol
        ):
            price = self.portfolio.last_price(order.symbol)
            self._execute(
                order,
                order.remaining_quantity,
                self._taker_price(order, price),
                LiquidityRole.TAKER,
            )

    def restore(self, order: Order) -> None:
        """Rest an order that was accepted before a restart in the book again, as it was.

        An order placed in the last step before the stop has not had its first match yet:
        it keeps the same first-touch rules as if the process had never stopped.
        """
        self._open.setdefault(order.symbol, []).append(order)
        self._open_count += 1
        self._bands.pop(order.symbol, None)
        self.portfolio.orders[order.client_order_id] = order
        if order.created_at >= self.portfolio.now_ms:
            self._fresh.add(order.client_order_id)
            if order.order_type is OrderType.LIMIT and not self._marketable(
                order, self.portfolio.last_price(order.symbol)
            ):
                self._passive.add(order.client_order_id)

    def cancel(self, order: Order, reason: str = "cancelled") -> None:
        if order.status.is_terminal:
            return
        order.cancel(self.portfolio.now_ms)
        self._forget(order)
        self.listener.on_order_update(order, reason)

    def modify(
        self,
        order: Order,
        *,
        quantity: float | None = None,
        price: float | None = None,
        stop_price: float | None = None,
    ) -> None:
        if not order.status.is_open:
            raise ValueError(
                f"order {order.client_order_id} is {order.status}, it cannot be modified"
            )
        if quantity is not None:
            if quantity <= order.filled_quantity:
                raise ValueError(
                    f"new quantity {quantity} must exceed the filled {order.filled_quantity}"
                )
            order.quantity = quantity
        if price is not None:
            order.price = price
        if stop_price is not None:
            order.stop_price = stop_price
            self._water.pop(order.client_order_id, None)
        order.updated_at = self.portfolio.now_ms
        self._bands.pop(order.symbol, None)
        self.listener.on_order_update(order, "modified")

    # ------------------------------------------------------------------ validation
    def _validate(self, order: Order) -> str:
        portfolio = self.portfolio
        spec = portfolio.markets.get(order.symbol)
        if spec is None:
            return f"unknown symbol {order.symbol}"
        price = order.price or order.stop_price or portfolio.last_price(order.symbol)
        if order.quantity < spec.min_amount - _EPSILON:
            return f"quantity {order.quantity} is below the minimum {spec.min_amount} for {order.symbol}"
        if order.quantity > spec.max_amount:
            return f"quantity {order.quantity} is above the maximum {spec.max_amount} for {order.symbol}"
        ledger = portfolio.ledger
        if (
            ledger.position_mode is PositionMode.HEDGE
            and spec.is_derivative
            and order.position_side is None
        ):
            return "hedge mode needs a position side (long or short) on every order"
        closable = ledger.closable_quantity(order.symbol, order.side, order.position_side)
        if order.reduce_only and closable <= _EPSILON:
            return "reduce-only order would not reduce a position"
        closes_leg = self._closes_hedge_leg(order)
        if closes_leg and order.quantity > closable * (1 + 1e-9) + _EPSILON:
            # A hedge-mode order on the closing side of a leg can only close it (as on the
            # exchanges); it must not open the other side or close more than the leg holds.
            leg = order.position_side.value  # type: ignore[union-attr]
            return (
                f"hedge mode: a {order.side} on the {leg} side closes the {leg} position, "
                f"which holds {closable:.8g}; {order.quantity:.8g} cannot be closed"
            )
        if (
            not spec.is_derivative
            and order.side is OrderSide.SELL
            and order.quantity > closable + _EPSILON
        ):
            return (
                f"insufficient {spec.base} balance: selling {order.quantity} but holding {closable} "
                "(spot positions cannot be shorted)"
            )
        opening = 0.0 if order.reduce_only or closes_leg else max(order.quantity - closable, 0.0)
        if opening > _EPSILON:
            if price <= 0:
                return f"no price known yet for {order.symbol}"
            if spec.notional(opening, price) < spec.min_notional - _EPSILON:
                return f"order value {spec.notional(opening, price):.8g} is below the minimum notional {spec.min_notional}"
            needed = portfolio.required_margin(spec, opening, price)
            reserved = self._reserved_by_open_orders()
            available = portfolio.available_for_orders() - reserved
            if needed > available * (1 + 1e-9) + _EPSILON:
                what = "margin" if spec.is_derivative else f"{spec.quote} balance"
                return f"insufficient {what}: the order needs {needed:.8g}, {max(available, 0.0):.8g} available"
        return ""

    def _reserved_by_open_orders(self) -> float:
        """Cash or margin that resting opening orders will need (their closing part needs none)."""
        if not self._open_count:
            return 0.0
        portfolio = self.portfolio
        reserved = 0.0
        for order in self.open_orders():
            if order.reduce_only or order.order_type.is_conditional:
                continue
            closable = portfolio.ledger.closable_quantity(
                order.symbol, order.side, order.position_side
            )
            opening = order.remaining_quantity - closable
            if opening <= _EPSILON:
                continue
            price = order.price or portfolio.last_price(order.symbol)
            reserved += portfolio.required_margin(portfolio.markets[order.symbol], opening, price)
        return reserved

    def _closes_hedge_leg(self, order: Order) -> bool:
        """True for a hedge-mode order on the closing side of its leg (a sell of the long leg)."""
        return (
            order.position_side is not None
            and self.portfolio.ledger.position_mode is PositionMode.HEDGE
            and order.side is order.position_side.closing_side
        )

    @staticmethod
    def _marketable(order: Order, price: float) -> bool:
        if price <= 0 or order.price is None:
            return True
        return order.price >= price if order.side is OrderSide.BUY else order.price <= price

    # ------------------------------------------------------------------ matching
    def process_bar_marked(
        self,
        symbol: str,
        timestamp: int,
        open_: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        mark_open: float,
        mark_high: float,
        mark_low: float,
        mark_close: float,
    ) -> None:
        """``process_bar`` where the mark price's bar decides liquidations (orders still fill on trades)."""
        self._mark_path = bar_path(mark_open, mark_high, mark_low, mark_close, self.intrabar_path)
        self._mark_low = mark_low
        self._mark_high = mark_high
        try:
            self.process_bar(symbol, timestamp, open_, high, low, close, volume)
        finally:
            self._mark_path = None

    def process_bar(
        self,
        symbol: str,
        timestamp: int,
        open_: float,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> None:
        """Match open orders and liquidations of ``symbol`` against one bar."""
        orders = self._open.get(symbol)
        if orders:
            band = self._bands.get(symbol)
            if band is None:
                band = self._bands[symbol] = self._quiet_band(symbol)
            if low > band[0] and high < band[1]:
                quiet = True  # inside the band: the full test would find nothing either
            else:
                quiet = self._quiet_bar(symbol, low, high)
        else:
            quiet = False
        if quiet:
            # Nothing reachable in this bar: only the first-bar marks of new orders expire.
            if orders and (self._fresh or self._passive):
                for order in orders:
                    self._fresh.discard(order.client_order_id)
                    self._passive.discard(order.client_order_id)
            return
        self._match(
            symbol, timestamp, bar_path(open_, high, low, close, self.intrabar_path), volume
        )

    def process_tick(self, symbol: str, timestamp: int, price: float) -> None:
        self._match(symbol, timestamp, (price,), 0.0)

    def _match(self, symbol: str, timestamp: int, path: tuple[float, ...], volume: float) -> None:
        orders = self._open.get(symbol)
        liquidatable = self._liquidatable(symbol)
        if not orders and not liquidatable:
            return
        self._matching_symbol = symbol
        self._bands.pop(symbol, None)  # fills, triggers and trailing marks may change the book
        self._bar_volume = volume
        self._cursor = 0.0
        self._filled_this_bar.clear()
        try:
            if orders:
                self._expire(orders, timestamp)
            if len(path) == 1 and self._quiet_bar(symbol, path[0], path[0]):
                return
            while True:
                event = self._earliest(symbol, path)
                if event is None:
                    break
                self._cursor = event.position
                self._apply(event, timestamp)
            for order in self._open.get(symbol, ()):
                if order.order_type is OrderType.TRAILING_STOP and order.status.is_open:
                    self._commit_trailing(order, path)
        finally:
            self._matching_symbol = None
            self._created_at.clear()
            for order in self._open.get(symbol, ()):
                self._fresh.discard(order.client_order_id)
                self._passive.discard(order.client_order_id)

    def _quiet_band(self, symbol: str) -> tuple[float, float]:
        """The prices a bar must stay strictly between for ``_quiet_bar`` to be True with no
        trailing mark moving: above every level a fall would touch, below every level a rise
        would touch. ``_NO_BAND`` when an order or a liquidation makes that bar-dependent."""
        if self.liquidation and self.portfolio._derivative.get(symbol, False):
            return _NO_BAND  # liquidation levels move with the account
        floor, ceiling = -math.inf, math.inf
        resting = [order for order in self._open.get(symbol, ()) if order.status.is_open]
        if any(_matched_every_bar(order) for order in resting):
            return _NO_BAND
        for order in resting:
            kind = order.order_type
            buy = order.side is OrderSide.BUY
            if kind is OrderType.LIMIT or (order.triggered and kind.has_limit_price):
                level, rising = order.price, not buy
            elif kind is OrderType.TRAILING_STOP:
                water = self._trailing_water(order)
                if water is None:
                    return _NO_BAND  # not armed yet: activation is checked bar by bar
                fraction = (order.trailing_pct or 0.0) / 100.0
                if buy:  # protects a short: the mark follows lows, the stop sits above it
                    floor = max(floor, water)
                    ceiling = min(ceiling, water * (1 + fraction))
                else:
                    ceiling = min(ceiling, water)
                    floor = max(floor, water * (1 - fraction))
                continue
            else:
                level = order.stop_price
                rising = buy if kind in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT) else not buy
            if level is None:
                return _NO_BAND
            if rising:
                ceiling = min(ceiling, level)
            else:
                floor = max(floor, level)
        return (floor, ceiling)

    def _quiet_bar(self, symbol: str, low: float, high: float) -> bool:
        """True when nothing can happen within [low, high]: no trigger, limit or liquidation
        is reachable. Then the only work is moving trailing water marks to the bar's extreme,
        which is what walking the whole path would do. This is the common case for resting
        brackets, and it keeps protective exits cheap in long backtests."""
        trailing: list[tuple[Order, float]] = []
        for order in self._open.get(symbol, ()):
            if order.status not in _OPEN_STATUSES:
                continue
            kind = order.order_type
            buy = order.side is OrderSide.BUY
            if (
                kind is OrderType.MARKET
                or order.time_in_force is not TimeInForce.GTC
                or order.expire_at is not None
            ):
                return False
            if (
                kind is OrderType.STOP_MARKET or kind is OrderType.TAKE_PROFIT
            ):  # resting brackets, first
                upward = buy if kind is OrderType.STOP_MARKET else not buy
                if (high >= order.stop_price) if upward else (low <= order.stop_price):  # type: ignore[operator]
                    return False
            elif kind is OrderType.LIMIT or (order.triggered and kind.has_limit_price):
                if (low <= order.price) if buy else (high >= order.price):  # type: ignore[operator]
                    return False
            elif kind is OrderType.TRAILING_STOP:
                water = self._water.get(order.client_order_id)
                if water is None:
                    water = self._trailing_water(order)
                fraction = (order.trailing_pct or 0.0) / 100.0
                if water is None:
                    activation = order.activation_price
                    if activation is None or (
                        (high >= activation) if not buy else (low <= activation)
                    ):
                        return False
                    continue
                if buy:
                    water = min(water, low)
                    if high >= water * (1 + fraction):
                        return False
                else:
                    water = max(water, high)
                    if low <= water * (1 - fraction):
                        return False
                trailing.append((order, water))
            else:
                upward = buy if kind in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT) else not buy
                if (high >= order.stop_price) if upward else (low <= order.stop_price):  # type: ignore[operator]
                    return False
        if self.liquidation and self.portfolio._derivative.get(symbol, False):
            if self._mark_path is not None:
                low, high = self._mark_low, self._mark_high
            for position in self.portfolio.ledger.open_positions(symbol):
                level = self._liquidation_price(position)
                if level is not None and (
                    (high >= level) if position.side is PositionSide.SHORT else (low <= level)
                ):
                    return False
        water_marks = self._water
        for order, water in trailing:
            if water_marks.get(order.client_order_id) == water:
                continue  # the bar set no new extreme: the stop stays where it is
            self._bands.pop(symbol, None)
            fraction = (order.trailing_pct or 0.0) / 100.0
            water_marks[order.client_order_id] = water
            order.stop_price = (
                water * (1 - fraction) if order.side is OrderSide.SELL else water * (1 + fraction)
            )
        return True

    def _expire(self, orders: list[Order], timestamp: int) -> None:
        if all(order.expire_at is None for order in orders):
            return
        for order in list(orders):
            if (
                order.expire_at is not None
                and order.expire_at <= timestamp
                and order.status.is_open
            ):
                order.expire(timestamp)
                self._forget(order)
                self.listener.on_order_update(order, "expired (GTD)")

    def _liquidatable(self, symbol: str) -> list[Position]:
        if not self.liquidation or not self.portfolio._derivative.get(symbol, False):
            return []
        return self.portfolio.ledger.open_positions(symbol)

    def _earliest(self, symbol: str, path: tuple[float, ...]) -> _Event | None:
        best: _Event | None = None
        for order in self._open.get(symbol, ()):
            if not order.status.is_open or order.client_order_id in self._filled_this_bar:
                continue
            event = self._order_event(order, path)
            if event is not None and (best is None or event.position < best.position):
                best = event
        marks = self._mark_path if self._mark_path is not None else path
        for position in self._liquidatable(symbol):
            level = self._liquidation_price(position)
            if level is None:
                continue
            touch = first_touch(
                marks, self._cursor, level, upward=position.side is PositionSide.SHORT
            )
            if touch is not None and (best is None or touch[0] < best.position):
                best = _Event(touch[0], level, LiquidityRole.TAKER, liquidated=position)
        return best

    def _liquidation_price(self, position: Position) -> float | None:
        portfolio = self.portfolio
        if position.margin_mode is MarginMode.CROSS:  # one wallet: one settlement currency a run
            others = [p for p in portfolio.ledger.open_positions() if p is not position]
            other_pnl = sum(p.unrealized_pnl for p in others)
            other_mm = sum(p.maintenance_margin() for p in others)
            return liquidation_price_cross(position, portfolio.account.balance, other_pnl, other_mm)
        return position.liquidation_price

    def _order_event(self, order: Order, path: tuple[float, ...]) -> _Event | None:
        start = max(self._created_at.get(order.client_order_id, 0.0), self._cursor)
        kind = order.order_type
        buy = order.side is OrderSide.BUY
        if kind is OrderType.MARKET:
            return _Event(start, price_at(path, start), LiquidityRole.TAKER, order)
        if kind is OrderType.LIMIT or (order.triggered and kind.has_limit_price):
            return self._limit_event(order, path, start, buy)
        if kind is OrderType.TRAILING_STOP:
            touch, water = trailing_touch(
                path,
                start,
                self._trailing_water(order),
                (order.trailing_pct or 0.0) / 100.0,
                order.activation_price,
                protects_long=not buy,
            )
            if touch is None:
                return None
            return _Event(touch[0], touch[1], LiquidityRole.TAKER, order, water=water)
        upward = buy if kind in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT) else not buy
        touch = first_touch(path, start, order.stop_price, upward)  # type: ignore[arg-type]
        if touch is None:
            return None
        position, price, through = touch
        if kind.has_limit_price:
            return _Event(position, price, LiquidityRole.TAKER, order, trigger_only=True)
        return _Event(position, price if through else order.stop_price, LiquidityRole.TAKER, order)  # type: ignore[arg-type]

    def _limit_event(
        self, order: Order, path: tuple[float, ...], start: float, buy: bool
    ) -> _Event | None:
        limit = order.price
        touch = first_touch(path, start, limit, upward=not buy)  # type: ignore[arg-type]
        fresh = order.client_order_id in self._fresh or order.client_order_id in self._created_at
        if touch is None:
            if fresh and order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
                return _Event(
                    start, 0.0, LiquidityRole.TAKER, order
                )  # nothing at the limit: cancel
            return None
        position, price, through = touch
        if through and fresh and position == start:
            passive = order.client_order_id in self._passive
            if passive and order.time_in_force not in (TimeInForce.IOC, TimeInForce.FOK):
                return _Event(position, limit, LiquidityRole.MAKER, order)  # type: ignore[arg-type]
            return _Event(position, price, LiquidityRole.TAKER, order)
        if fresh and order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            return _Event(start, 0.0, LiquidityRole.TAKER, order)
        return _Event(position, limit, LiquidityRole.MAKER, order)  # type: ignore[arg-type]

    def _apply(self, event: _Event, timestamp: int) -> None:
        if event.liquidated is not None:
            self._cancel_symbol_orders(
                event.liquidated.symbol, event.liquidated.side, "position liquidated"
            )
            self.listener.on_liquidation(event.liquidated, event.price, timestamp)
            return
        order = event.order
        assert order is not None
        if event.price == 0.0 and order.order_type in (
            OrderType.LIMIT,
            OrderType.STOP_LIMIT,
            OrderType.TAKE_PROFIT_LIMIT,
        ):
            self.cancel(order, f"{order.time_in_force}: not fillable at the limit price")
            return
        if event.trigger_only:
            order.triggered = True
            self._created_at[order.client_order_id] = event.position
            self._fresh.add(order.client_order_id)
            self.listener.on_order_update(order, "triggered")
            return
        quantity = order.remaining_quantity
        reducing = order.reduce_only or self._closes_hedge_leg(order)
        if reducing:
            closable = self.portfolio.ledger.closable_quantity(
                order.symbol, order.side, order.position_side
            )
            if closable <= _EPSILON:
                self.cancel(order, "reduce-only order has no position left to reduce")
                return
            quantity = min(quantity, closable)
        if event.liquidity is LiquidityRole.MAKER and self.participation and self._bar_volume > 0:
            quantity = min(quantity, self.participation * self._bar_volume)
        if (
            order.time_in_force is TimeInForce.FOK
            and quantity < order.remaining_quantity - _EPSILON
        ):
            self.cancel(order, "FOK: could not fill the whole quantity")
            return
        price = event.price
        if event.liquidity is LiquidityRole.TAKER:
            price = self._taker_price(order, price, quantity)
        shortfall = self._spot_cash_shortfall(order, quantity, price, event.liquidity)
        if shortfall:
            self._refuse(order, shortfall)
            return
        self._filled_this_bar.add(order.client_order_id)
        self._execute(order, quantity, price, event.liquidity)
        if order.status not in _OPEN_STATUSES:
            return
        if (
            reducing
            and self.portfolio.ledger.closable_quantity(
                order.symbol, order.side, order.position_side
            )
            <= _EPSILON
        ):
            # The position is gone: a reduce-only remainder can never fill. (A remainder left
            # by volume participation while the position is still open keeps resting.)
            self.cancel(order, "reduce-only remainder exceeds the position")
        if order.status.is_open and order.time_in_force is TimeInForce.IOC:
            self.cancel(order, "IOC: remainder cancelled")

    def _spot_cash_shortfall(
        self, order: Order, quantity: float, price: float, liquidity: LiquidityRole
    ) -> str:
        """Why a spot buy cannot be paid for at its execution price ("" when it can).

        Orders are checked against the last price when placed, but a market order placed at
        a bar's close fills at the next open: after a gap up it may cost more than the cash
        held. An exchange checks the balance when the order executes, so the simulation does
        too, instead of letting spot cash go negative.
        """
        spec = self.portfolio.markets[order.symbol]
        if spec.is_derivative or order.side is not OrderSide.BUY:
            return ""
        fee, _ = self.portfolio.fee_for(spec, quantity, price, liquidity is LiquidityRole.MAKER)
        cost = spec.notional(quantity, price) + fee
        cash = self.portfolio.account.balance
        if cost <= cash * (1 + 1e-9) + _EPSILON:
            return ""
        return (
            f"insufficient {spec.quote} balance at execution: the fill needs {cost:.8g} "
            f"at {price:.8g}, {max(cash, 0.0):.8g} available"
        )

    def _refuse(self, order: Order, reason: str) -> None:
        """Reject an order the venue would refuse at execution (cancel what is left of a partly filled one)."""
        if order.can_transition(OrderStatus.REJECTED):
            order.reject(reason, self.portfolio.now_ms)
            self._forget(order)
            self.listener.on_order_update(order, reason)
        else:
            self.cancel(order, reason)

    def _taker_price(self, order: Order, price: float, quantity: float | None = None) -> float:
        return self.slippage.adjust(
            order.side, price, quantity or order.remaining_quantity, self._bar_volume
        )

    def _execute(
        self, order: Order, quantity: float, price: float, liquidity: LiquidityRole
    ) -> None:
        self.listener.on_execution(order, quantity, price, self.portfolio.now_ms, liquidity)
        if order.status.is_terminal:
            self._forget(order)
            if order.oco_group:
                for sibling in list(self._open.get(order.symbol, ())):
                    if sibling.oco_group == order.oco_group and sibling.status.is_open:
                        self.cancel(
                            sibling, f"OCO: {order.order_type} {order.client_order_id} filled"
                        )

    def _commit_trailing(self, order: Order, path: tuple[float, ...]) -> None:
        start = self._created_at.get(order.client_order_id, 0.0)
        _, water = trailing_touch(
            path,
            start,
            self._trailing_water(order),
            (order.trailing_pct or 0.0) / 100.0,
            order.activation_price,
            protects_long=order.side is OrderSide.SELL,
        )
        if water is not None:
            self._water[order.client_order_id] = water
            fraction = (order.trailing_pct or 0.0) / 100.0
            order.stop_price = (
                water * (1 - fraction) if order.side is OrderSide.SELL else water * (1 + fraction)
            )

    def _trailing_water(self, order: Order) -> float | None:
        """The trailing stop's water mark; before the first bar it is implied by the initial stop.

        Without this a trailing stop placed at 100 with a 10% callback (stop 90) would start
        trailing from the next bar's open: a gap down to 85 would move the stop to 76.5
        instead of filling at the open as any stop that is gapped through does.
        """
        water = self._water.get(order.client_order_id)
        if water is None and order.activation_price is None and order.stop_price:
            fraction = (order.trailing_pct or 0.0) / 100.0
            water = (
                order.stop_price / (1 - fraction)
                if order.side is OrderSide.SELL
                else order.stop_price / (1 + fraction)
            )
        return water

    def _cancel_symbol_orders(self, symbol: str, side: object, reason: str) -> None:
        """Cancel the reduce-only orders that closed the liquidated position (in hedge mode
        only those of its leg: the other leg keeps its stop and target)."""
        for order in list(self._open.get(symbol, ())):
            if order.position_side is not None and order.position_side is not side:
                continue
            if order.reduce_only and order.status.is_open:
                self.cancel(order, reason)

    def _forget(self, order: Order) -> None:
        self._bands.pop(order.symbol, None)
        orders = self._open.get(order.symbol)
        if orders and order in orders:
            orders.remove(order)
            self._open_count -= 1
        self.portfolio.orders.pop(order.client_order_id, None)
        self._water.pop(order.client_order_id, None)
        self._fresh.discard(order.client_order_id)
        self._passive.discard(order.client_order_id)
