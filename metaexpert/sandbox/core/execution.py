"""Execution in the matching core: booking a fill into balances or positions, with fees.

A mixin of ``SandboxExchange`` (split out by concern). Spot buys pay the fee in the coin
received and sells in the quote coin; derivative fills realise PnL on the closing part (linear
or inverse, ``core/margin.py``), open or flip the position with the rest, and pay the fee in
the settle coin. ``limit`` caps one execution (partial fills by available volume).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from metaexpert.sandbox.core.events import AccountEvent, AlgoEvent, BalanceEvent, OrderEvent
from metaexpert.sandbox.core.matching import is_closing_leg, split_quantity
from metaexpert.sandbox.core.model import Fill, OrderKind, SandboxOrder

# Venues charge a fee in whole units of the coin's last decimal and report exactly that
# (8 places on the wire, ``model.fmt``); the wallet must move by the reported fee, or a client
# that books the fee it was told drifts from the ledger (0.0052704345 booked, 0.00527043 told).
FEE_PLACES = 8


def charged_fee(value: float) -> float:
    return round(value, FEE_PLACES)


if TYPE_CHECKING:
    from metaexpert.sandbox.core.exchange import SandboxExchange

    _Base = SandboxExchange
else:
    _Base = object


class ExecutionMixin(_Base):
    def execute(
        self,
        order: SandboxOrder,
        price: float,
        time: int,
        *,
        is_maker: bool,
        limit: float | None = None,
    ) -> None:
        """Fill the rest of ``order`` (or at most ``limit`` of it) at ``price``."""
        quantity = order.remaining if limit is None else min(order.remaining, limit)
        if self.markets[order.market].is_derivative:
            self._execute_derivative(order, price, time, is_maker, quantity)
        else:
            self._execute_spot(order, price, time, is_maker, quantity)

    def _execute_spot(
        self, order: SandboxOrder, price: float, time: int, is_maker: bool, quantity: float
    ) -> None:
        account = self.spot_accounts[order.api_key]
        spec = self.markets[order.market]
        rule = spec.rules[order.symbol]
        cost = quantity * price
        fee_rate = spec.maker_fee if is_maker else spec.taker_fee
        if order.locked_asset is not None:
            share = (
                order.locked_amount * quantity / order.remaining
                if order.remaining
                else order.locked_amount
            )
            account.unlock(order.locked_asset, share)
            order.locked_amount -= share
            if order.locked_amount <= 1e-12 or quantity >= order.remaining - 1e-12:
                if order.locked_amount > 0:
                    account.unlock(order.locked_asset, order.locked_amount)
                order.locked_asset, order.locked_amount = None, 0.0
        if order.side == "BUY":
            if account.available(rule.quote_asset) + 1e-9 < cost:
                self.finish(order, "EXPIRED", time)
                return
            commission, commission_asset = charged_fee(quantity * fee_rate), rule.base_asset
            account.credit(rule.quote_asset, -cost)
            account.credit(rule.base_asset, quantity - commission)
        else:
            if account.available(rule.base_asset) + 1e-12 < quantity:
                self.finish(order, "EXPIRED", time)
                return
            commission, commission_asset = charged_fee(cost * fee_rate), rule.quote_asset
            account.credit(rule.base_asset, -quantity)
            account.credit(rule.quote_asset, cost - commission)
        fill = self._record_fill(
            order, price, quantity, commission, commission_asset, time, is_maker, 0.0
        )
        self.listener(OrderEvent(order, "TRADE", fill))
        self.listener(BalanceEvent(order.market, account, time))

    def _execute_derivative(
        self, order: SandboxOrder, price: float, time: int, is_maker: bool, quantity: float
    ) -> None:
        market = order.market
        account = self.margin_accounts[market][order.api_key]
        position = account.position(order.symbol, order.position_side)
        opening, closing = split_quantity(order.side, order.position_side, quantity, position)
        if (
            order.reduce_only
            or order.close_position
            or is_closing_leg(order.side, order.position_side)
        ):
            opening = 0.0
            if closing <= 0:
                self.finish(order, "EXPIRED", time)
                return
            quantity = closing
        direction = 1.0 if order.side == "BUY" else -1.0
        realized = 0.0
        if closing > 0:
            held = position.signed_amount
            realized = self.margin.pnl(
                market, order.symbol, math.copysign(closing, held), position.entry_price, price
            )
            remaining = abs(position.amount) - closing
            if position.position_side == "BOTH":
                position.amount = math.copysign(remaining, held) if remaining > 1e-12 else 0.0
            else:
                position.amount = remaining if remaining > 1e-12 else 0.0
            if position.amount == 0.0:
                position.entry_price = 0.0
            position.realized_pnl += realized
        if opening > 0:
            size = abs(position.amount)
            if self.margin.is_inverse(market):  # inverse entry: contract-weighted harmonic mean
                value = (size / position.entry_price if size else 0.0) + opening / price
                position.entry_price = (size + opening) / value
            else:
                position.entry_price = (position.entry_price * size + price * opening) / (
                    size + opening
                )
            if position.position_side == "BOTH":
                position.amount += direction * opening
            else:
                position.amount = size + opening
        position.update_time = time
        spec = self.markets[market]
        fee_rate = spec.maker_fee if is_maker else spec.taker_fee
        commission = charged_fee(
            self.margin.notional(market, order.symbol, quantity, price) * fee_rate
        )
        asset = self.margin.settle_asset(market, order.symbol)
        account.wallet[asset] = account.wallet.get(asset, 0.0) + realized - commission
        fill = self._record_fill(
            order, price, quantity, commission, asset, time, is_maker, realized
        )
        if (
            order.kind is OrderKind.MARKET
            and order.status == "PARTIALLY_FILLED"
            and (order.reduce_only or order.close_position)
            and position.amount == 0.0
        ):
            # a reduce-only market order larger than the position closes it and is done
            order.status = "FILLED"
        self.listener(OrderEvent(order, "TRADE", fill))
        self.listener(AccountEvent(market, account, "ORDER", time))

    def _record_fill(
        self,
        order: SandboxOrder,
        price: float,
        quantity: float,
        commission: float,
        commission_asset: str,
        time: int,
        is_maker: bool,
        realized: float,
    ) -> Fill:
        fill = Fill(
            market=order.market,
            api_key=order.api_key,
            trade_id=next(self._trade_ids),
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            quantity=quantity,
            commission=commission,
            commission_asset=commission_asset,
            time=time,
            is_maker=is_maker,
            realized_pnl=realized,
            position_side=order.position_side,
        )
        order.fills.append(fill)
        order.executed_quantity += quantity
        order.cumulative_quote += quantity * price
        order.status = (
            "FILLED" if order.executed_quantity >= order.quantity - 1e-12 else "PARTIALLY_FILLED"
        )
        if order.close_position:
            order.status = "FILLED"
        order.update_time = time
        self.fills[order.market].append(fill)
        return fill

    def finish(self, order: SandboxOrder, status: str, time: int | None = None) -> None:
        order.update_time = self.now if time is None else time
        # A spot algo order locks its coin like a plain one: a cancelled stop must free it (it
        # stayed locked, and the close that followed was refused for "insufficient balance").
        if order.locked_asset is not None:
            account = self.spot_accounts[order.api_key]
            account.unlock(order.locked_asset, order.locked_amount)
            order.locked_asset, order.locked_amount = None, 0.0
            self.listener(BalanceEvent(order.market, account, order.update_time))
        if order.is_algo:
            order.algo_status = status
            self.listener(AlgoEvent(order))
            return
        order.status = status
        self.listener(OrderEvent(order, status))
