"""The ``ctx`` object every handler receives: read the market and account, place orders.

It is the same object in backtest, paper and live mode; only the broker behind the
engine differs. Prices and quantities are floats in the market's units.
"""

from __future__ import annotations

import logging
from datetime import datetime
from types import MappingProxyType
from typing import Any

from metaexpert.core.account import Account
from metaexpert.core.clock import ms_to_datetime
from metaexpert.core.enums import OrderSide, OrderType, PositionSide, TimeInForce, TradeMode
from metaexpert.core.errors import ConfigurationError
from metaexpert.core.intent import ORDER_REQUEST_OPTIONS, OrderRequest
from metaexpert.core.order import Order
from metaexpert.core.position import Position
from metaexpert.core.series import BarSeries
from metaexpert.engine.engine import Engine, StopRun
from metaexpert.engine.parameters import Parameters

#: What ``ctx.buy``/``ctx.sell`` accept: the request's fields, the symbol, and percent stops.
_ORDER_OPTIONS = ORDER_REQUEST_OPTIONS | {"symbol", "stop_loss_pct", "take_profit_pct"}


class Context:
    def __init__(
        self,
        engine: Engine,
        *,
        trade_mode: TradeMode,
        state: dict[str, Any] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self._engine = engine
        self._portfolio = engine.portfolio
        self.mode = trade_mode
        self.params = Parameters(engine.strategy.parameters)
        self.state: dict[str, Any] = state if state is not None else {}
        self.log = log or logging.getLogger(f"metaexpert.expert.{engine.strategy.strategy_name}")
        self.symbol = engine.strategy.symbol
        self.symbols = tuple(engine.strategy.symbols)
        self.timeframe = engine.strategy.timeframe
        self.strategy = MappingProxyType(engine.strategy.model_dump())

    # ------------------------------------------------------------------ reading
    @property
    def now_ms(self) -> int:
        return self._portfolio.now_ms

    @property
    def time(self) -> datetime:
        return ms_to_datetime(self._portfolio.now_ms)

    @property
    def account(self) -> Account:
        return self._portfolio.account

    @property
    def equity(self) -> float:
        return self._portfolio.account.equity

    def bars(self, symbol: str | None = None, timeframe: str | None = None) -> BarSeries:
        return self._portfolio.bars(symbol or self.symbol, timeframe)

    def price(self, symbol: str | None = None) -> float:
        return self._portfolio.last_price(symbol or self.symbol)

    def position(
        self, symbol: str | None = None, side: PositionSide | str | None = None
    ) -> Position | None:
        """The open position of ``symbol`` (in hedge mode, of ``side``), or None."""
        positions = self._portfolio.positions(symbol or self.symbol)
        if side is not None:
            side = PositionSide(side)
            positions = [p for p in positions if p.side is side]
        return positions[0] if positions else None

    def positions(self, symbol: str | None = None) -> list[Position]:
        return self._portfolio.positions(symbol)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self._portfolio.open_orders(symbol)

    # ------------------------------------------------------------------ acting
    def buy(self, quantity: float | None = None, **options: Any) -> Order:
        """Buy ``quantity`` (None: sized by the strategy's size_type/size_value).

        Options: symbol, price (limit), stop_price (stop), order_type, position_side,
        reduce_only, time_in_force, expire_at, stop_loss, take_profit (prices),
        stop_loss_pct, take_profit_pct, trailing_pct, activation_price, client_order_id,
        tag, comment. Returns the Order; check ``order.status`` (REJECTED with
        ``order.reject_reason`` when a risk rule or the broker refused it).
        """
        return self._order(OrderSide.BUY, quantity, options)

    def sell(self, quantity: float | None = None, **options: Any) -> Order:
        """Sell; in hedge mode this opens or adds to a short unless ``reduce_only``."""
        return self._order(OrderSide.SELL, quantity, options)

    def _order(self, side: OrderSide, quantity: float | None, options: dict[str, Any]) -> Order:
        if not options:  # ctx.buy() / ctx.sell(quantity): nothing to translate
            return self._engine.execute(OrderRequest(self.symbol, side, quantity))
        unknown = set(options) - _ORDER_OPTIONS
        if unknown:
            raise ConfigurationError(
                f"ctx.{side.value}() got unknown option(s) {sorted(unknown)}; "
                f"known: {', '.join(sorted(_ORDER_OPTIONS))}"
            )
        symbol = options.pop("symbol", None) or self.symbol
        reference = options.get("price") or self._portfolio.last_price(symbol)
        stop_loss_pct = options.pop("stop_loss_pct", None)
        take_profit_pct = options.pop("take_profit_pct", None)
        direction = 1 if side is OrderSide.BUY else -1
        if stop_loss_pct is not None and reference:
            options["stop_loss"] = reference * (1 - direction * stop_loss_pct / 100)
        if take_profit_pct is not None and reference:
            options["take_profit"] = reference * (1 + direction * take_profit_pct / 100)
        for key, enum in (
            ("order_type", OrderType),
            ("position_side", PositionSide),
            ("time_in_force", TimeInForce),
        ):
            if isinstance(options.get(key), str):
                options[key] = enum(options[key])
        return self._engine.execute(OrderRequest(symbol, side, quantity, **options))

    def close(
        self,
        symbol: str | None = None,
        side: PositionSide | str | None = None,
        quantity: float | None = None,
        tag: str = "close",
    ) -> list[Order]:
        """Close the position(s) of ``symbol`` (in hedge mode only ``side`` if given)."""
        return self._engine.close_position(
            symbol or self.symbol, PositionSide(side) if side else None, tag=tag, quantity=quantity
        )

    def close_all(self) -> list[Order]:
        orders: list[Order] = []
        for symbol in {p.symbol for p in self._portfolio.positions()}:
            orders.extend(self._engine.close_position(symbol))
        return orders

    def cancel(self, order: Order | str) -> None:
        self._engine.cancel(self._resolve(order))

    def cancel_all(self, symbol: str | None = None) -> None:
        """Cancel every order of ``symbol`` (all symbols by default) that is not done yet,
        those whose create has not been answered included."""
        for order in list(self._portfolio.orders.values()):
            if not order.status.is_terminal and (symbol is None or order.symbol == symbol):
                self._engine.cancel(order)

    def modify(
        self,
        order: Order | str,
        *,
        quantity: float | None = None,
        price: float | None = None,
        stop_price: float | None = None,
    ) -> None:
        self._engine.modify(
            self._resolve(order), quantity=quantity, price=price, stop_price=stop_price
        )

    def set_leverage(self, leverage: float, symbol: str | None = None) -> None:
        symbol = symbol or self.symbol
        if self._engine.risk is not None:
            leverage = self._engine.risk.validate_leverage(leverage, self._portfolio.market(symbol))
        self._portfolio.leverage[symbol] = float(leverage)

    def stop(self, reason: str = "stopped by the expert") -> None:
        """End the run after the current handler returns."""
        self._engine.stop(reason)
        raise StopRun(reason)

    def _resolve(self, order: Order | str) -> Order:
        if isinstance(order, Order):
            return order
        found = self._portfolio.orders.get(order)
        if found is None:
            raise KeyError(f"no open order with client order id {order!r}")
        return found
