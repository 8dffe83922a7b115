"""Order placement in the matching core: filters, duplicate client ids, balance and margin checks.

A mixin of ``SandboxExchange`` (split out by concern to keep each file readable; it uses the
exchange's state directly). A venue parses its wire request into an ``OrderRequest``; this
validates it the same way for every venue and books it, refusing with ``Reject(reason)``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING

from metaexpert.sandbox.core.events import AlgoEvent, OrderEvent
from metaexpert.sandbox.core.matching import (
    is_closing_leg,
    is_multiple,
    split_quantity,
    trailing_trigger,
    would_trigger,
)
from metaexpert.sandbox.core.model import (
    FuturesAccount,
    MarketKind,
    OrderKind,
    OrderRequest,
    SandboxOrder,
    SpotAccount,
)
from metaexpert.sandbox.core.rejects import Reject, RejectReason

if TYPE_CHECKING:
    from metaexpert.sandbox.core.exchange import SandboxExchange

    _Base = SandboxExchange
else:
    _Base = object


class PlacementMixin(_Base):
    def _validate_filters(
        self,
        market: str,
        quantity: Decimal,
        price: Decimal | None,
        reference: float,
        symbol: str,
        reduce_only: bool,
    ) -> None:
        rule = self.symbols[market][symbol]
        if price is not None:
            if price < Decimal(repr(rule.min_price)) or price > Decimal(repr(rule.max_price)):
                raise Reject(RejectReason.PRICE_FILTER, market=market)
            if not is_multiple(price, rule.tick_size):
                raise Reject(RejectReason.PRICE_FILTER, market=market)
        if quantity < Decimal(repr(rule.min_quantity)) or quantity > Decimal(
            repr(rule.max_quantity)
        ):
            raise Reject(RejectReason.LOT_SIZE, market=market)
        if not is_multiple(quantity, rule.step_size):
            raise Reject(RejectReason.LOT_SIZE, market=market)
        notional = self.margin.notional(
            market, symbol, float(quantity), float(price) if price is not None else reference
        )
        if self.markets[market].kind is MarketKind.INVERSE:
            notional = float(quantity) * self.margin.contract_size(
                market, symbol
            )  # USD value of the contracts
        if notional < rule.min_notional and not reduce_only:
            raise Reject(RejectReason.MIN_NOTIONAL, market=market, detail=str(rule.min_notional))

    def _check_client_id(self, market: str, api_key: str, client_order_id: str) -> None:
        """Binance refuses a client id only while an order with it is open; Bybit and OKX refuse
        any reuse (``unique_client_ids``), which is what makes a blind retry safe there."""
        for order in self.orders[market].values():
            if (
                order.api_key == api_key
                and order.client_order_id == client_order_id
                and (order.is_open or self.unique_client_ids)
            ):
                raise Reject(RejectReason.DUPLICATE_CLIENT_ID, market=market)

    def check_trading(self, api_key: str) -> None:
        if not self.can_trade.get(api_key, False):
            raise Reject(RejectReason.NOT_PERMITTED)

    def place_order(self, request: OrderRequest) -> SandboxOrder:
        """Validate, book and (when marketable) fill a new order."""
        market = request.market
        spec = self.markets[market]
        self.check_trading(request.api_key)
        symbol = self.check_symbol(market, request.symbol)
        account = self.margin_accounts[market][request.api_key] if spec.is_derivative else None
        if account is not None:
            if account.dual_side == (request.position_side == "BOTH"):
                raise Reject(RejectReason.POSITION_SIDE_MISMATCH, market=market)
            if request.reduce_only and account.dual_side and not self.hedge_reduce_only:
                raise Reject(RejectReason.REDUCE_ONLY_IN_HEDGE_MODE, market=market)
        client_order_id = request.client_order_id or f"sandbox-{self.next_order_id()}"
        self._check_client_id(market, request.api_key, client_order_id)
        bid, ask = self.bid_ask(symbol, market)
        reference = ask if request.side == "BUY" else bid
        quantity = request.quantity
        if request.quote_quantity and quantity is None:
            step = self.symbols[market][symbol].step_size
            quantity = Decimal(repr(step)) * math.floor(
                request.quote_quantity / reference / step + 1e-9
            )
        if quantity is None:
            if not request.close_position:
                raise ValueError("an order without quantity must be a close-position order")
            quantity = Decimal(0)
        closing = (
            request.reduce_only
            or request.close_position
            or is_closing_leg(request.side, request.position_side)
        )
        if not request.close_position:
            self._validate_filters(
                market, quantity, request.price, reference, symbol, spec.is_derivative and closing
            )
        elif request.price is not None and not is_multiple(
            request.price, self.symbols[market][symbol].tick_size
        ):
            raise Reject(RejectReason.PRICE_FILTER, market=market)
        order = SandboxOrder(
            market=market,
            api_key=request.api_key,
            order_id=self.next_order_id(),
            client_order_id=client_order_id,
            symbol=symbol,
            side=request.side,
            type=request.venue_type,
            kind=request.kind,
            quantity=float(quantity),
            price=float(request.price) if request.price is not None else 0.0,
            stop_price=request.stop_price,
            time_in_force=request.time_in_force,
            time=self.now,
            position_side=request.position_side,
            reduce_only=request.reduce_only,
            close_position=request.close_position,
            quote_order_quantity=request.quote_quantity,
            is_algo=request.algo,
            post_only=request.post_only,
            callback_rate=request.callback_rate,
            activation_price=request.activation_price,
        )
        if order.kind is OrderKind.TRAILING_STOP_MARKET and not order.activation_price:
            order.extreme_price = self.price(symbol, market)
            order.stop_price = trailing_trigger(order)
        if order.is_conditional and would_trigger(order, self.price(symbol, market)):
            raise Reject(RejectReason.TRIGGER_WOULD_FIRE, market=market)
        marketable = order.kind is OrderKind.MARKET or (
            order.kind is OrderKind.LIMIT
            and (
                (order.side == "BUY" and order.price >= ask)
                or (order.side == "SELL" and order.price <= bid)
            )
        )
        if order.post_only and marketable:
            raise Reject(RejectReason.POST_ONLY_WOULD_TAKE, market=market)
        if account is None:
            self._lock_spot(self.spot_accounts[request.api_key], order, reference)
        elif not order.is_algo:
            self._check_margin(account, order, reference)
        self.register(order)
        if order.is_algo:
            self.listener(AlgoEvent(order))
            return order
        self.listener(OrderEvent(order, "NEW"))
        if marketable:
            self.execute(order, reference, self.now, is_maker=False)
        elif order.kind is OrderKind.LIMIT and order.time_in_force in ("IOC", "FOK"):
            self.finish(order, "EXPIRED")
        return order

    def _lock_spot(self, account: SpotAccount, order: SandboxOrder, reference: float) -> None:
        rule = self.symbols[order.market][order.symbol]
        if order.side == "BUY":
            amount = order.quantity * (order.price or order.stop_price or reference)
            asset = rule.quote_asset
        else:
            amount = order.quantity
            asset = rule.base_asset
        if account.available(asset) + 1e-12 < amount:
            raise Reject(RejectReason.INSUFFICIENT_BALANCE, market=order.market)
        account.lock(asset, amount)
        order.locked_asset = asset
        order.locked_amount = amount

    def _check_margin(self, account: FuturesAccount, order: SandboxOrder, reference: float) -> None:
        position = account.position(order.symbol, order.position_side)
        opening, closing = split_quantity(order.side, order.position_side, order.quantity, position)
        if order.reduce_only or is_closing_leg(order.side, order.position_side):
            if closing <= 0 or (
                is_closing_leg(order.side, order.position_side) and opening > 1e-12
            ):
                raise Reject(RejectReason.REDUCE_ONLY_REJECTED, market=order.market)
            return
        if opening <= 0:
            return
        notional = self.margin.notional(
            order.market, order.symbol, opening, order.price or reference
        )
        required = (
            notional / self.margin.leverage(account, order.symbol)
            + notional * self.markets[order.market].taker_fee
        )
        asset = (
            self.margin.settle_asset(order.market, order.symbol)
            if self.margin.is_inverse(order.market)
            else None
        )
        if required > self.margin.available_balance(account, asset) + 1e-9:
            raise Reject(RejectReason.INSUFFICIENT_MARGIN, market=order.market)
