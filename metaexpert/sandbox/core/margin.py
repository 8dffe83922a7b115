"""Derivative accounts of the matching core: PnL, margin, liquidation, funding, account settings.

Linear contracts settle in the quote coin: PnL = amount * contract_size * (price - entry), the
contract size being 1 (amounts in the base coin, Binance, Bybit) or the venue's contract value
(OKX ``ctVal``: 0.01 BTC per BTC-USDT-SWAP contract). Inverse contracts
(``MarketKind.INVERSE``, Binance COIN-M, Bybit inverse) are counted in contracts of
``contract_size`` USD and settle in the base coin: notional = contracts * size / price and
PnL = contracts * size * (1/entry - 1/price), so a short of 3 BTCUSD contracts (300 USD) opened
and valued at the same price has a PnL of exactly 0 BTC. Margin is the entry notional over the
leverage; cross margin backs a position with the whole wallet of its settle coin, isolated with
its own margin only. Funding is paid every 8 h of market time: -signed notional * rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from metaexpert.core.timeframe import HOUR_MS
from metaexpert.sandbox.core.events import AccountEvent
from metaexpert.sandbox.core.matching import BarPrices, is_closing_leg
from metaexpert.sandbox.core.model import (
    FuturesAccount,
    FuturesPosition,
    MarketKind,
    OrderKind,
    SandboxOrder,
)
from metaexpert.sandbox.core.rejects import Reject, RejectReason

if TYPE_CHECKING:
    from metaexpert.sandbox.core.exchange import SandboxExchange

FUNDING_INTERVAL_MS = 8 * HOUR_MS


class MarginBook:
    """Margin arithmetic over an exchange's derivative accounts (read-mostly; liquidation and
    funding write the wallet through the exchange)."""

    def __init__(self, exchange: SandboxExchange) -> None:
        self.exchange = exchange

    # ------------------------------------------------------------------ contract arithmetic
    def is_inverse(self, market: str) -> bool:
        return self.exchange.markets[market].kind is MarketKind.INVERSE

    def contract_size(self, market: str, symbol: str) -> float:
        return self.exchange.markets[market].contract_size.get(symbol, 1.0)

    def settle_asset(self, market: str, symbol: str) -> str:
        rule = self.exchange.symbols[market][symbol]
        return rule.base_asset if self.is_inverse(market) else rule.quote_asset

    def notional(self, market: str, symbol: str, amount: float, price: float) -> float:
        """Value of ``amount`` (contracts for inverse) at ``price`` in the settle coin."""
        if self.is_inverse(market):
            return amount * self.contract_size(market, symbol) / price if price else 0.0
        return amount * self.contract_size(market, symbol) * price

    def pnl(
        self, market: str, symbol: str, signed_amount: float, entry: float, price: float
    ) -> float:
        if signed_amount == 0.0 or entry == 0.0 or price == 0.0:
            return 0.0
        if self.is_inverse(market):
            return signed_amount * self.contract_size(market, symbol) * (1.0 / entry - 1.0 / price)
        return signed_amount * self.contract_size(market, symbol) * (price - entry)

    # ------------------------------------------------------------------ account figures
    def mark(self, position: FuturesPosition) -> float:
        return self.exchange.price(position.symbol, position.market)

    def unrealized(self, position: FuturesPosition) -> float:
        if position.amount == 0.0:
            return 0.0
        return self.pnl(
            position.market,
            position.symbol,
            position.signed_amount,
            position.entry_price,
            self.mark(position),
        )

    def leverage(self, account: FuturesAccount, symbol: str) -> int:
        if self.exchange.markets[account.market].kind is MarketKind.OPTION:
            return 1  # option buyers pay the whole premium
        return account.leverage.get(symbol, self.exchange.config.default_leverage)

    def position_margin(self, account: FuturesAccount, position: FuturesPosition) -> float:
        entry_notional = self.notional(
            position.market, position.symbol, abs(position.amount), position.entry_price
        )
        return entry_notional / self.leverage(account, position.symbol)

    def default_asset(self, account: FuturesAccount, asset: str | None) -> str | None:
        """A unified wallet holds every coin: its margin is counted in the market's settle coin."""
        if asset is not None or not account.unified:
            return asset
        first = next(iter(self.exchange.symbols[account.market]), None)
        return self.settle_asset(account.market, first) if first is not None else None

    def _in_asset(self, account: FuturesAccount, symbol: str, asset: str | None) -> bool:
        return asset is None or self.settle_asset(account.market, symbol) == asset

    def open_order_margin(self, account: FuturesAccount, asset: str | None = None) -> float:
        total = 0.0
        for order in self.exchange.open_orders(account.market, account.api_key, None):
            if order.reduce_only or is_closing_leg(order.side, order.position_side):
                continue
            if not self._in_asset(account, order.symbol, asset):
                continue
            price = order.price or self.exchange.price(order.symbol, account.market)
            total += self.notional(
                account.market, order.symbol, order.remaining, price
            ) / self.leverage(account, order.symbol)
        return total

    def wallet(self, account: FuturesAccount, asset: str | None = None) -> float:
        asset = self.default_asset(account, asset)
        if asset is None:
            return sum(account.wallet.values())
        return account.wallet.get(asset, 0.0)

    def available_balance(self, account: FuturesAccount, asset: str | None = None) -> float:
        """Wallet + unrealised PnL - position margin - open-order margin (of one settle coin, or
        of every coin summed, which is what a linear USDT-only account has always reported)."""
        asset = self.default_asset(account, asset)
        positions = [
            p for p in account.open_positions() if self._in_asset(account, p.symbol, asset)
        ]
        unrealized = sum(self.unrealized(position) for position in positions)
        used = sum(self.position_margin(account, position) for position in positions)
        return (
            self.wallet(account, asset) + unrealized - used - self.open_order_margin(account, asset)
        )

    def maintenance_margin(self, account: FuturesAccount) -> float:
        rate = self.exchange.config.maintenance_margin_rate
        return (
            sum(
                self.notional(p.market, p.symbol, abs(p.amount), self.mark(p))
                for p in account.open_positions()
            )
            * rate
        )

    def liquidation_price(self, account: FuturesAccount, position: FuturesPosition) -> float:
        """Where the position's margin would run out (isolated: its own margin; cross: the wallet)."""
        size = abs(position.amount)
        if size == 0.0:
            return 0.0
        mmr = self.exchange.config.maintenance_margin_rate
        asset = self.settle_asset(position.market, position.symbol)
        if account.margin_type.get(position.symbol, "CROSSED") == "ISOLATED":
            margin = self.position_margin(account, position)
        else:
            # cross: the wallet and the other positions' results back this position, not its own PnL
            margin = (
                self.available_balance(
                    account, None if not self.is_inverse(account.market) else asset
                )
                + self.position_margin(account, position)
                - self.unrealized(position)
            )
        long = position.signed_amount > 0
        if self.is_inverse(position.market):
            # margin (coin) = size*c*(1/entry - 1/p) loss + mmr*size*c/p  ->  solve for p
            value = size * self.contract_size(position.market, position.symbol)
            if long:
                denominator = value / position.entry_price + margin
                price = value * (1.0 + mmr) / denominator if denominator > 0 else 0.0
            else:
                denominator = value / position.entry_price - margin
                price = value * (1.0 - mmr) / denominator if denominator > 0 else 0.0
            return max(price, 0.0)
        # linear: the loss per unit of price is the base amount, contracts x contract size (OKX
        # SWAP: 0.01 BTC a contract; counting contracts as coins put the price at the entry)
        base = size * self.contract_size(position.market, position.symbol)
        if long:
            price = (position.entry_price * base - margin) / (base * (1.0 - mmr))
        else:
            price = (position.entry_price * base + margin) / (base * (1.0 + mmr))
        return max(price, 0.0)

    def unified_coins(self, api_key: str) -> dict[str, dict[str, float]]:
        """Per coin of a unified account: wallet (free + locked), locked, unrealised PnL, position
        and open-order initial margin, available (free - margin + losses) and its USD price."""
        spot = self.exchange.spot_accounts[api_key]
        coins: dict[str, dict[str, float]] = {}

        def row(asset: str) -> dict[str, float]:
            if asset not in coins:
                free, locked = spot.free.get(asset, 0.0), spot.locked.get(asset, 0.0)
                coins[asset] = {"wallet": free + locked, "free": free, "locked": locked, "upl": 0.0,
                                "position_im": 0.0, "order_im": 0.0, "usd": self.usd_price(asset)}  # fmt: skip
            return coins[asset]

        for asset in sorted(set(spot.free) | set(spot.locked)):
            row(asset)
        for market, accounts in self.exchange.margin_accounts.items():
            account = accounts[api_key]
            for position in account.open_positions():
                entry = row(self.settle_asset(market, position.symbol))
                entry["upl"] += self.unrealized(position)
                entry["position_im"] += self.position_margin(account, position)
            for asset in {self.settle_asset(market, s) for s in self.exchange.symbols[market]}:
                row(asset)["order_im"] += self.open_order_margin(account, asset)
        for entry in coins.values():
            margin = entry["position_im"] + entry["order_im"]
            entry["available"] = max(entry["free"] - margin + min(entry["upl"], 0.0), 0.0)
        return coins

    def usd_price(self, asset: str) -> float:
        if asset in ("USDT", "USDC", "USD", "FDUSD"):
            return 1.0
        candle = f"{asset}USDT"
        return self.exchange.price(candle) if candle in self.exchange.series else 0.0

    # ------------------------------------------------------------------ settings
    def set_leverage(self, market: str, api_key: str, symbol: str, leverage: int) -> int:
        self.exchange.check_symbol(market, symbol)
        if leverage < 1 or leverage > self.exchange.config.max_leverage:
            raise Reject(RejectReason.INVALID_LEVERAGE, market=market, detail=str(leverage))
        self.exchange.margin_accounts[market][api_key].leverage[symbol] = leverage
        return leverage

    def set_margin_type(self, market: str, api_key: str, symbol: str, margin_type: str) -> None:
        """``margin_type`` is ISOLATED or CROSSED (the venue translates its own names)."""
        self.exchange.check_symbol(market, symbol)
        if margin_type not in ("ISOLATED", "CROSSED"):
            raise Reject(RejectReason.INVALID_MARGIN_MODE, market=market, detail=margin_type)
        account = self.exchange.margin_accounts[market][api_key]
        if account.margin_type.get(symbol, "CROSSED") == margin_type:
            raise Reject(RejectReason.MARGIN_MODE_UNCHANGED, market=market)
        if any(position.symbol == symbol for position in account.open_positions()):
            raise Reject(RejectReason.MARGIN_MODE_WITH_POSITION, market=market)
        if self.exchange.open_orders(market, api_key, symbol):
            raise Reject(RejectReason.MARGIN_MODE_WITH_ORDERS, market=market)
        account.margin_type[symbol] = margin_type

    def set_dual_side(self, market: str, api_key: str, dual: bool) -> None:
        account = self.exchange.margin_accounts[market][api_key]
        if account.dual_side == dual:
            raise Reject(RejectReason.POSITION_MODE_UNCHANGED, market=market)
        if account.open_positions():
            raise Reject(RejectReason.POSITION_MODE_WITH_POSITION, market=market)
        if self.exchange.open_orders(market, api_key, None) or self.exchange.open_orders(
            market, api_key, None, algo=True
        ):
            raise Reject(RejectReason.POSITION_MODE_WITH_ORDERS, market=market)
        account.dual_side = dual
        account.positions.clear()

    # ------------------------------------------------------------------ liquidation and funding
    def liquidate(self, market: str, symbol: str, bar: BarPrices) -> None:
        """Close positions whose liquidation price the bar reached, at that price (insurance-fund
        details are not modelled: the trader loses the margin down to that price)."""
        exchange = self.exchange
        for account in exchange.margin_accounts[market].values():
            for position in list(account.open_positions()):
                if position.symbol != symbol:
                    continue
                price = self.liquidation_price(account, position)
                long = position.signed_amount > 0
                if price <= 0 or (long and bar.low > price) or (not long and bar.high < price):
                    continue
                fill_price = min(price, bar.open) if long else max(price, bar.open)
                order = SandboxOrder(
                    market=market,
                    api_key=account.api_key,
                    order_id=exchange.next_order_id(),
                    client_order_id=f"autoclose-{bar.time}",
                    symbol=symbol,
                    side="SELL" if long else "BUY",
                    type="MARKET",
                    kind=OrderKind.MARKET,
                    quantity=abs(position.amount),
                    price=0.0,
                    stop_price=0.0,
                    time_in_force="IOC",
                    time=bar.time,
                    position_side=position.position_side,
                    reduce_only=True,
                )
                exchange.register(order)
                exchange.execute(order, fill_price, bar.time, is_maker=False)
                for pending in exchange.open_orders(market, account.api_key, symbol):
                    if pending.position_side == position.position_side and pending.reduce_only:
                        exchange.finish(pending, "EXPIRED", bar.time)

    def apply_funding(self, before: int, after: int) -> None:
        boundary = (before // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        if boundary > after:
            return
        exchange = self.exchange
        rate = exchange.config.funding_rate
        for market, accounts in exchange.margin_accounts.items():
            if exchange.markets[market].kind is MarketKind.OPTION:
                continue  # options pay no funding
            for symbol in exchange.symbols[market]:
                exchange.funding_rates.append(
                    {
                        "market": market,
                        "symbol": symbol,
                        "time": boundary,
                        "rate": rate,
                        "mark": exchange.price(symbol, market),
                    }
                )
            for account in accounts.values():
                for position in account.open_positions():
                    mark = self.mark(position)
                    value = self.notional(market, position.symbol, position.signed_amount, mark)
                    payment = -value * rate
                    asset = self.settle_asset(market, position.symbol)
                    account.wallet[asset] = account.wallet.get(asset, 0.0) + payment
                    exchange.funding.append(
                        {
                            "api_key": account.api_key,
                            "market": market,
                            "symbol": position.symbol,
                            "position_side": position.position_side,
                            "time": boundary,
                            "rate": rate,
                            "payment": payment,
                            "asset": asset,
                        }
                    )
                    exchange.listener(AccountEvent(market, account, "FUNDING_FEE", boundary))
