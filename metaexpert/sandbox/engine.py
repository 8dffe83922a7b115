"""The sandbox exchange: accounts, order matching against the candle replay, fees and positions.

Why candles drive matching: the replay clock is the only price source every client sees the same
way (klines, tickers, mark price), so an order fills exactly when the replayed bar crosses it:
limit orders at their price (or the bar open when the bar gaps through), stops and take-profits
at their trigger (or the open on a gap), market orders at the current price plus half the spread.
Every state change calls ``listener`` so the server can push user-data stream events.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from metaexpert.core.timeframe import HOUR_MS, Timeframe
from metaexpert.sandbox import errors as err
from metaexpert.sandbox.config import SandboxConfig, SymbolConfig
from metaexpert.sandbox.errors import BinanceError
from metaexpert.sandbox.market_data import CandleSeries, Kline, find_candle_file
from metaexpert.sandbox.orders import (
    FUTURES_ALGO_TYPES,
    FUTURES_PLAIN_TYPES,
    LIMIT_TYPES,
    SPOT,
    SPOT_TYPES,
    STOP_TYPES,
    USDM,
    Fill,
    FuturesAccount,
    FuturesPosition,
    SandboxOrder,
    SpotAccount,
    fmt,
)

QUOTE_ASSETS = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB")
FUNDING_INTERVAL_MS = 8 * HOUR_MS

KNOWN_RULES: dict[tuple[str, str], dict[str, float]] = {
    (SPOT, "BTCUSDT"): {
        "tick_size": 0.01,
        "step_size": 0.00001,
        "min_quantity": 0.00001,
        "min_notional": 5.0,
    },
    (SPOT, "ETHUSDT"): {
        "tick_size": 0.01,
        "step_size": 0.0001,
        "min_quantity": 0.0001,
        "min_notional": 5.0,
    },
    (USDM, "BTCUSDT"): {
        "tick_size": 0.10,
        "step_size": 0.001,
        "min_quantity": 0.001,
        "min_notional": 100.0,
    },
    (USDM, "ETHUSDT"): {
        "tick_size": 0.01,
        "step_size": 0.001,
        "min_quantity": 0.001,
        "min_notional": 20.0,
    },
}

# (market, api_key or None for public, event payload)
Listener = Callable[[str, str | None, dict[str, object]], None]


@dataclass(frozen=True, slots=True)
class BarPrices:
    """The price path one replay step offers to resting orders."""

    open: float
    high: float
    low: float
    close: float
    time: int


def split_symbol(symbol: str) -> tuple[str, str]:
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(f"cannot split {symbol} into base and quote assets")


def rules_for(market: str, symbol: str, configured: list[SymbolConfig]) -> SymbolConfig:
    for rule in configured:
        if rule.symbol == symbol:
            return rule
    base, quote = split_symbol(symbol)
    values = KNOWN_RULES.get(
        (market, symbol),
        {"tick_size": 0.01, "step_size": 0.001, "min_quantity": 0.001, "min_notional": 5.0},
    )
    return SymbolConfig(symbol=symbol, base_asset=base, quote_asset=quote, **values)


def _decimal(value: object, name: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise err.bad_parameter(name) from exc
    if not result.is_finite():
        raise err.bad_parameter(name)
    return result


def _is_multiple(value: Decimal, step: float) -> bool:
    return (value / Decimal(repr(step))) % 1 == 0


class SandboxExchange:
    """State and rules of the simulated Binance spot and USD-M markets.

    Not thread-safe on purpose: the server runs every call on its event loop thread.
    """

    def __init__(self, config: SandboxConfig, listener: Listener | None = None) -> None:
        self.config = config
        self.timeframe = Timeframe.parse(config.timeframe)
        self.listener: Listener = listener or (lambda market, key, payload: None)
        self.series: dict[str, CandleSeries] = {}
        for symbol in dict.fromkeys(config.spot_symbols + config.futures_symbols):
            path = find_candle_file(config.data_dir, symbol, self.timeframe)
            self.series[symbol] = CandleSeries(symbol, path, self.timeframe)
        self._align_start()
        self.symbols: dict[str, dict[str, SymbolConfig]] = {
            SPOT: {s: rules_for(SPOT, s, config.symbol_rules) for s in config.spot_symbols},
            USDM: {s: rules_for(USDM, s, config.symbol_rules) for s in config.futures_symbols},
        }
        self.spot_accounts = {
            account.api_key: SpotAccount(account.api_key, dict(account.spot_balances))
            for account in config.accounts
        }
        self.futures_accounts = {
            account.api_key: FuturesAccount(account.api_key, dict(account.futures_balances))
            for account in config.accounts
        }
        self.secrets = {account.api_key: account.secret for account in config.accounts}
        self.can_trade = {account.api_key: account.can_trade for account in config.accounts}
        self.orders: dict[str, dict[int, SandboxOrder]] = {SPOT: {}, USDM: {}}
        # symbol -> orders that may still fill; pruned lazily so a long replay stays O(open orders)
        self._resting: dict[str, dict[int, SandboxOrder]] = {}
        self.fills: dict[str, list[Fill]] = {SPOT: [], USDM: []}
        self.funding: list[dict[str, object]] = []
        self.price_override: dict[str, float] = {}
        self.trade_price: dict[tuple[str, str], float] = {}
        self._order_ids = itertools.count(1_000_001)
        self._trade_ids = itertools.count(5_000_001)

    # ------------------------------------------------------------------ clock and prices
    def _align_start(self) -> None:
        """Start all series at the same market time so symbols stay in step."""
        if self.config.start_time_ms is not None:
            start = self.config.start_time_ms
        else:
            start = max(
                int(series.timestamps[min(self.config.warmup_bars, len(series) - 1)])
                for series in self.series.values()
            )
        for series in self.series.values():
            series.cursor = series.index_at_or_before(start)

    @property
    def now(self) -> int:
        """Market time (ms): the close of the latest replayed bar."""
        return max(series.current_time for series in self.series.values())

    def check_symbol(self, market: str, symbol: str | None) -> str:
        if symbol is None or symbol == "":
            raise err.missing_parameter("symbol")
        if symbol not in self.symbols[market]:
            raise err.invalid_symbol()
        return symbol

    def price(self, symbol: str, market: str | None = None) -> float:
        """Current price: a forced price, else the last replayed trade of ``market`` (trade
        matching), else the close of the latest replayed candle."""
        if symbol in self.price_override:
            return self.price_override[symbol]
        if market is not None and (market, symbol) in self.trade_price:
            return self.trade_price[(market, symbol)]
        series = self.series[symbol]
        return float(series.closes[series.cursor])

    def bid_ask(self, symbol: str, market: str | None = None) -> tuple[float, float]:
        price = self.price(symbol, market)
        half = price * self.config.spread_bps / 20_000.0
        return price - half, price + half

    def last_bar(self, symbol: str) -> Kline:
        series = self.series[symbol]
        return series.bar(series.cursor)

    # ------------------------------------------------------------------ replay
    def advance(self, bars: int = 1) -> list[tuple[str, Kline]]:
        """Replay ``bars`` more bars of every symbol; fill what they cross. Returns the new bars."""
        if bars < 1:
            raise ValueError(f"bars must be >= 1, got {bars}")
        produced: list[tuple[str, Kline]] = []
        for _ in range(bars):
            before = self.now
            moved = False
            for symbol, series in self.series.items():
                if series.exhausted:
                    continue
                series.cursor += 1
                moved = True
                self.price_override.pop(symbol, None)
                bar = series.bar(series.cursor)
                produced.append((symbol, bar))
                self._match_symbol(
                    symbol, BarPrices(bar.open, bar.high, bar.low, bar.close, series.current_time)
                )
            if not moved:
                break
            self._apply_funding(before, self.now)
        return produced

    def set_price(self, symbol: str, price: float) -> None:
        """Move the current price of ``symbol`` (until the next bar) and fill what the move crosses."""
        if symbol not in self.series:
            raise err.invalid_symbol()
        if not math.isfinite(price) or price <= 0:
            raise ValueError(f"price must be a positive number, got {price}")
        previous = self.price(symbol)
        self.price_override[symbol] = float(price)
        self.trade_price = {
            key: value for key, value in self.trade_price.items() if key[1] != symbol
        }
        # The price travels from where it was to the new value: orders in between fill at their
        # own prices, as they would on a continuous move.
        path = BarPrices(
            previous, max(previous, price), min(previous, price), float(price), self.now
        )
        self._match_symbol(symbol, path)

    def apply_trade(self, market: str, symbol: str, price: float, time: int) -> None:
        """A replayed trade moves ``market``'s price of ``symbol`` and fills what it crosses."""
        if symbol not in self.symbols[market] or symbol in self.price_override:
            return
        previous = self.price(symbol, market)
        self.trade_price[(market, symbol)] = price
        path = BarPrices(previous, max(previous, price), min(previous, price), price, time)
        self._match_symbol(symbol, path, market=market)

    def _match_symbol(self, symbol: str, bar: BarPrices, market: str | None = None) -> None:
        if symbol in self.symbols[USDM] and market in (None, USDM):
            self._liquidate(symbol, bar)
        resting = self._resting.get(symbol, {})
        for order_id in sorted(resting):
            order = resting[order_id]
            if order.is_open and (market is None or order.market == market):
                self._try_fill(order, bar)
        for order_id in [order_id for order_id, order in resting.items() if not order.is_open]:
            del resting[order_id]

    def _register(self, order: SandboxOrder) -> None:
        self.orders[order.market][order.order_id] = order
        self._resting.setdefault(order.symbol, {})[order.order_id] = order

    def _try_fill(self, order: SandboxOrder, bar: BarPrices) -> None:
        if order.is_conditional and not order.triggered:
            if not _crossed_trigger(order, bar):
                return
            self._trigger(order, bar)
            if not order.is_open and not order.is_algo:
                return
            if order.is_algo:
                return
        if order.type in (
            "STOP_LOSS",
            "TAKE_PROFIT",
            "STOP_MARKET",
            "TAKE_PROFIT_MARKET",
            "MARKET",
        ):
            fill_price = _trigger_fill_price(order, bar)
            self._execute(
                order, self._with_spread(order.side, fill_price), bar.time, is_maker=False
            )
            return
        limit = order.price
        if order.side == "BUY" and bar.low <= limit:
            self._execute(order, min(limit, bar.open), bar.time, is_maker=True)
        elif order.side == "SELL" and bar.high >= limit:
            self._execute(order, max(limit, bar.open), bar.time, is_maker=True)

    def _liquidate(self, symbol: str, bar: BarPrices) -> None:
        """Close positions whose liquidation price the bar reached, at that price (Binance's
        insurance-fund details are not modelled: the trader loses the margin down to that price)."""
        for account in self.futures_accounts.values():
            for position in list(account.open_positions()):
                if position.symbol != symbol:
                    continue
                price = self.liquidation_price(account, position)
                long = position.signed_amount > 0
                if price <= 0 or (long and bar.low > price) or (not long and bar.high < price):
                    continue
                fill_price = min(price, bar.open) if long else max(price, bar.open)
                order = SandboxOrder(
                    market=USDM,
                    api_key=account.api_key,
                    order_id=next(self._order_ids),
                    client_order_id=f"autoclose-{bar.time}",
                    symbol=symbol,
                    side="SELL" if long else "BUY",
                    type="MARKET",
                    quantity=abs(position.amount),
                    price=0.0,
                    stop_price=0.0,
                    time_in_force="IOC",
                    time=bar.time,
                    position_side=position.position_side,
                    reduce_only=True,
                )
                self._register(order)
                self._execute(order, fill_price, bar.time, is_maker=False)
                for pending in self.open_orders(USDM, account.api_key, symbol):
                    if pending.position_side == position.position_side and pending.reduce_only:
                        self._finish(pending, "EXPIRED", bar.time)

    def _trigger(self, order: SandboxOrder, bar: BarPrices) -> None:
        order.triggered = True
        order.update_time = bar.time
        if not order.is_algo:
            self._emit_order(order, "NEW")
            return
        # An algo order hands over to a new plain order, as Binance's algo service does.
        child_type = "MARKET" if order.type.endswith("MARKET") else "LIMIT"
        child = SandboxOrder(
            market=USDM,
            api_key=order.api_key,
            order_id=next(self._order_ids),
            client_order_id=f"algo{order.order_id}",
            symbol=order.symbol,
            side=order.side,
            type=child_type,
            quantity=order.quantity,
            price=order.price if child_type == "LIMIT" else 0.0,
            stop_price=0.0,
            time_in_force="GTC",
            time=bar.time,
            position_side=order.position_side,
            reduce_only=order.reduce_only or order.close_position,
            close_position=order.close_position,
        )
        if order.close_position:
            position = self.futures_accounts[order.api_key].position(
                order.symbol, order.position_side
            )
            child.quantity = abs(position.amount)
        order.algo_status = "FINISHED"
        order.actual_order_id = child.order_id
        self._emit_algo(order)
        if child.quantity <= 0:
            order.algo_status = "CANCELED"
            self._emit_algo(order)
            return
        self._register(child)
        self._emit_order(child, "NEW")
        if child_type == "MARKET":
            fill_price = _trigger_fill_price(order, bar)
            self._execute(
                child, self._with_spread(order.side, fill_price), bar.time, is_maker=False
            )
        else:
            self._try_fill(child, bar)

    def _with_spread(self, side: str, price: float) -> float:
        half = price * self.config.spread_bps / 20_000.0
        return price + half if side == "BUY" else price - half

    def _apply_funding(self, before: int, after: int) -> None:
        boundary = (before // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        if boundary > after:
            return
        for account in self.futures_accounts.values():
            for position in account.open_positions():
                mark = self.price(position.symbol, USDM)
                payment = -position.signed_amount * mark * self.config.funding_rate
                quote = self.symbols[USDM][position.symbol].quote_asset
                account.wallet[quote] = account.wallet.get(quote, 0.0) + payment
                record = {
                    "api_key": account.api_key,
                    "symbol": position.symbol,
                    "position_side": position.position_side,
                    "time": boundary,
                    "rate": self.config.funding_rate,
                    "payment": payment,
                }
                self.funding.append(record)
                self._emit_account(account, reason="FUNDING_FEE", time=boundary)

    # ------------------------------------------------------------------ validation
    def _validate_filters(
        self,
        market: str,
        rule: SymbolConfig,
        quantity: Decimal,
        price: Decimal | None,
        reference_price: float,
        reduce_only: bool = False,
    ) -> None:
        if price is not None:
            if price < Decimal(repr(rule.min_price)) or price > Decimal(repr(rule.max_price)):
                raise err.filter_failure("PRICE_FILTER")
            if not _is_multiple(price, rule.tick_size):
                raise err.filter_failure("PRICE_FILTER")
        if quantity < Decimal(repr(rule.min_quantity)) or quantity > Decimal(
            repr(rule.max_quantity)
        ):
            raise err.filter_failure("LOT_SIZE")
        if not _is_multiple(quantity, rule.step_size):
            raise err.filter_failure("LOT_SIZE")
        notional = float(quantity) * (float(price) if price is not None else reference_price)
        if notional < rule.min_notional and not reduce_only:
            if market == SPOT:
                raise err.filter_failure("NOTIONAL")
            raise BinanceError(
                -4164,
                f"Order's notional must be no smaller than {fmt(rule.min_notional)} (unless you choose reduce only).",
            )

    def _check_client_id(self, market: str, api_key: str, client_order_id: str) -> None:
        for order in self.orders[market].values():
            if (
                order.api_key == api_key
                and order.client_order_id == client_order_id
                and order.is_open
            ):
                if market == SPOT:
                    raise err.duplicate_spot_client_id()
                raise err.duplicate_futures_client_id()

    def _check_trading(self, api_key: str) -> None:
        if not self.can_trade.get(api_key, False):
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)

    # ------------------------------------------------------------------ spot orders
    def place_spot_order(self, api_key: str, params: dict[str, str]) -> SandboxOrder:
        self._check_trading(api_key)
        symbol = self.check_symbol(SPOT, params.get("symbol"))
        rule = self.symbols[SPOT][symbol]
        side = _required(params, "side").upper()
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        order_type = _required(params, "type").upper()
        if order_type not in SPOT_TYPES:
            raise BinanceError(-1116, "Invalid orderType.")
        client_order_id = params.get("newClientOrderId") or f"sandbox-{next(self._order_ids)}"
        self._check_client_id(SPOT, api_key, client_order_id)
        bid, ask = self.bid_ask(symbol, SPOT)
        reference = ask if side == "BUY" else bid
        if order_type in LIMIT_TYPES and not params.get("price"):
            raise err.missing_parameter("price")
        price = _decimal(params["price"], "price") if order_type in LIMIT_TYPES else None
        stop_price = 0.0
        if order_type in ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"):
            stop_price = float(_decimal(_required(params, "stopPrice"), "stopPrice"))
        quote_quantity = 0.0
        if order_type == "MARKET" and "quoteOrderQty" in params and "quantity" not in params:
            quote_quantity = float(_decimal(params["quoteOrderQty"], "quoteOrderQty"))
            steps = math.floor(quote_quantity / reference / rule.step_size + 1e-9)
            quantity = Decimal(repr(rule.step_size)) * steps
        else:
            quantity = _decimal(_required(params, "quantity"), "quantity")
        self._validate_filters(SPOT, rule, quantity, price, reference)
        if order_type in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT") and not params.get(
            "timeInForce"
        ):
            raise err.missing_parameter("timeInForce")
        time_in_force = params.get("timeInForce", "GTC").upper()
        if time_in_force not in ("GTC", "IOC", "FOK"):
            raise BinanceError(-1115, "Invalid timeInForce.")
        order = SandboxOrder(
            market=SPOT,
            api_key=api_key,
            order_id=next(self._order_ids),
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            type=order_type,
            quantity=float(quantity),
            price=float(price) if price is not None else 0.0,
            stop_price=stop_price,
            time_in_force=time_in_force,
            time=self.now,
            quote_order_quantity=quote_quantity,
        )
        if order.is_conditional and _would_trigger(order, self.price(symbol, SPOT)):
            raise BinanceError(-2010, "Stop price would trigger immediately.")
        marketable = order_type == "MARKET" or (
            order_type in ("LIMIT", "LIMIT_MAKER")
            and ((side == "BUY" and order.price >= ask) or (side == "SELL" and order.price <= bid))
        )
        if order_type == "LIMIT_MAKER" and marketable:
            raise BinanceError(-2010, "Order would immediately match and take.")
        account = self.spot_accounts[api_key]
        self._lock_spot(account, order, rule, reference)
        self._register(order)
        self._emit_order(order, "NEW")
        if marketable:
            self._execute(order, reference, self.now, is_maker=False)
        elif time_in_force in ("IOC", "FOK") and order_type == "LIMIT":
            self._finish(order, "EXPIRED")
        return order

    def _lock_spot(
        self, account: SpotAccount, order: SandboxOrder, rule: SymbolConfig, reference: float
    ) -> None:
        if order.side == "BUY":
            unit_price = order.price or order.stop_price or reference
            amount = order.quantity * unit_price
            asset = rule.quote_asset
        else:
            amount = order.quantity
            asset = rule.base_asset
        if account.available(asset) + 1e-12 < amount:
            raise err.insufficient_balance()
        account.lock(asset, amount)
        order.locked_asset = asset
        order.locked_amount = amount

    # ------------------------------------------------------------------ futures orders
    def place_futures_order(
        self, api_key: str, params: dict[str, str], *, algo: bool = False
    ) -> SandboxOrder:
        self._check_trading(api_key)
        symbol = self.check_symbol(USDM, params.get("symbol"))
        rule = self.symbols[USDM][symbol]
        account = self.futures_accounts[api_key]
        side = _required(params, "side").upper()
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        type_key = "type" if "type" in params or not algo else "orderType"
        order_type = _required(params, type_key).upper()
        if algo:
            if params.get("algoType", "CONDITIONAL").upper() != "CONDITIONAL":
                raise BinanceError(-1116, "Invalid algoType.")
            if order_type not in FUTURES_ALGO_TYPES:
                raise BinanceError(-1116, "Invalid orderType.")
        elif order_type in FUTURES_ALGO_TYPES:
            raise BinanceError(
                -4120,
                "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
            )
        elif order_type not in FUTURES_PLAIN_TYPES:
            raise BinanceError(-1116, "Invalid orderType.")
        position_side = params.get("positionSide", "BOTH").upper()
        if position_side not in ("BOTH", "LONG", "SHORT"):
            raise BinanceError(-4006, "Invalid position side.")
        if account.dual_side == (position_side == "BOTH"):
            raise BinanceError(-4061, "Order's position side does not match user's setting.")
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        if reduce_only and account.dual_side:
            raise BinanceError(-1106, "Parameter 'reduceOnly' sent when not required.")
        close_position = params.get("closePosition", "false").lower() == "true"
        client_key = "clientAlgoId" if algo else "newClientOrderId"
        client_order_id = params.get(client_key) or f"sandbox-{next(self._order_ids)}"
        self._check_client_id(USDM, api_key, client_order_id)
        bid, ask = self.bid_ask(symbol, USDM)
        reference = ask if side == "BUY" else bid
        needs_price = order_type in ("LIMIT", "STOP", "TAKE_PROFIT")
        if needs_price and not params.get("price"):
            raise err.missing_parameter("price")
        if order_type == "LIMIT" and not params.get("timeInForce"):
            raise err.missing_parameter("timeInForce")
        price = _decimal(params["price"], "price") if needs_price else None
        stop_price = 0.0
        if order_type in FUTURES_ALGO_TYPES:
            stop_price = float(
                _decimal(_required(params, "triggerPrice" if algo else "stopPrice"), "triggerPrice")
            )
        if close_position:
            quantity = Decimal(0)
        else:
            quantity = _decimal(_required(params, "quantity"), "quantity")
        closing = reduce_only or close_position or _is_closing_leg(side, position_side)
        if not close_position:
            self._validate_filters(USDM, rule, quantity, price, reference, reduce_only=closing)
        elif price is not None and not _is_multiple(price, rule.tick_size):
            raise err.filter_failure("PRICE_FILTER")
        time_in_force = params.get("timeInForce", "GTC").upper()
        if time_in_force not in ("GTC", "IOC", "FOK", "GTX", "GTD"):
            raise BinanceError(-1115, "Invalid timeInForce.")
        order = SandboxOrder(
            market=USDM,
            api_key=api_key,
            order_id=next(self._order_ids),
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            type=order_type,
            quantity=float(quantity),
            price=float(price) if price is not None else 0.0,
            stop_price=stop_price,
            time_in_force=time_in_force,
            time=self.now,
            position_side=position_side,
            reduce_only=reduce_only,
            close_position=close_position,
            is_algo=algo,
        )
        if order.is_conditional and _would_trigger(order, self.price(symbol, USDM)):
            raise BinanceError(-2021, "Order would immediately trigger.")
        marketable = order_type == "MARKET" or (
            order_type == "LIMIT"
            and ((side == "BUY" and order.price >= ask) or (side == "SELL" and order.price <= bid))
        )
        if order_type == "LIMIT" and time_in_force == "GTX" and marketable:
            raise BinanceError(
                -5022,
                "Due to the order could not be executed as maker, the Post Only order will be rejected.",
            )
        if not algo:
            self._check_futures_capacity(account, order, reference)
        self._register(order)
        if algo:
            self._emit_algo(order)
            return order
        self._emit_order(order, "NEW")
        if marketable:
            self._execute(order, reference, self.now, is_maker=False)
        elif time_in_force in ("IOC", "FOK"):
            self._finish(order, "EXPIRED")
        return order

    def _check_futures_capacity(
        self, account: FuturesAccount, order: SandboxOrder, reference: float
    ) -> None:
        position = account.position(order.symbol, order.position_side)
        opening, closing = _split_quantity(
            order.side, order.position_side, order.quantity, position
        )
        if order.reduce_only or _is_closing_leg(order.side, order.position_side):
            if closing <= 0 or (
                _is_closing_leg(order.side, order.position_side) and opening > 1e-12
            ):
                raise BinanceError(-2022, "ReduceOnly Order is rejected.")
            return
        if opening <= 0:
            return
        leverage = account.leverage.get(order.symbol, self.config.default_leverage)
        unit_price = order.price or reference
        required = (
            opening * unit_price / leverage + opening * unit_price * self.config.futures_taker_fee
        )
        if required > self.available_balance(account) + 1e-9:
            raise err.insufficient_margin()

    # ------------------------------------------------------------------ execution
    def _execute(self, order: SandboxOrder, price: float, time: int, *, is_maker: bool) -> None:
        if order.market == SPOT:
            self._execute_spot(order, price, time, is_maker)
        else:
            self._execute_futures(order, price, time, is_maker)

    def _execute_spot(self, order: SandboxOrder, price: float, time: int, is_maker: bool) -> None:
        account = self.spot_accounts[order.api_key]
        rule = self.symbols[SPOT][order.symbol]
        quantity = order.quantity - order.executed_quantity
        cost = quantity * price
        fee_rate = self.config.spot_maker_fee if is_maker else self.config.spot_taker_fee
        if order.locked_asset is not None:
            account.unlock(order.locked_asset, order.locked_amount)
            order.locked_asset, order.locked_amount = None, 0.0
        if order.side == "BUY":
            if account.available(rule.quote_asset) + 1e-9 < cost:
                self._finish(order, "EXPIRED", time)
                return
            commission, commission_asset = quantity * fee_rate, rule.base_asset
            account.credit(rule.quote_asset, -cost)
            account.credit(rule.base_asset, quantity - commission)
        else:
            if account.available(rule.base_asset) + 1e-12 < quantity:
                self._finish(order, "EXPIRED", time)
                return
            commission, commission_asset = cost * fee_rate, rule.quote_asset
            account.credit(rule.base_asset, -quantity)
            account.credit(rule.quote_asset, cost - commission)
        fill = self._record_fill(
            order, price, quantity, commission, commission_asset, time, is_maker, 0.0
        )
        self._emit_order(order, "TRADE", fill)
        self._emit_spot_balance(account, time)

    def _execute_futures(
        self, order: SandboxOrder, price: float, time: int, is_maker: bool
    ) -> None:
        account = self.futures_accounts[order.api_key]
        rule = self.symbols[USDM][order.symbol]
        position = account.position(order.symbol, order.position_side)
        quantity = order.quantity - order.executed_quantity
        opening, closing = _split_quantity(order.side, order.position_side, quantity, position)
        if (
            order.reduce_only
            or order.close_position
            or _is_closing_leg(order.side, order.position_side)
        ):
            opening = 0.0
            if closing <= 0:
                self._finish(order, "EXPIRED", time)
                return
            quantity = closing
        direction = 1.0 if order.side == "BUY" else -1.0
        realized = 0.0
        if closing > 0:
            held = position.signed_amount
            realized = closing * (price - position.entry_price) * (1.0 if held > 0 else -1.0)
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
            position.entry_price = (position.entry_price * size + price * opening) / (
                size + opening
            )
            if position.position_side == "BOTH":
                position.amount += direction * opening
            else:
                position.amount = size + opening
        position.update_time = time
        fee_rate = self.config.futures_maker_fee if is_maker else self.config.futures_taker_fee
        commission = quantity * price * fee_rate
        quote = rule.quote_asset
        account.wallet[quote] = account.wallet.get(quote, 0.0) + realized - commission
        fill = self._record_fill(
            order, price, quantity, commission, quote, time, is_maker, realized
        )
        if order.type == "MARKET" and order.status == "PARTIALLY_FILLED":
            # a reduce-only market order larger than the position closes it and is done
            order.status = "FILLED"
        self._emit_order(order, "TRADE", fill)
        self._emit_account(account, reason="ORDER", time=time)

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

    def _finish(self, order: SandboxOrder, status: str, time: int | None = None) -> None:
        order.update_time = self.now if time is None else time
        if order.is_algo:
            order.algo_status = status
            self._emit_algo(order)
            return
        order.status = status
        if order.locked_asset is not None:
            self.spot_accounts[order.api_key].unlock(order.locked_asset, order.locked_amount)
            order.locked_asset, order.locked_amount = None, 0.0
            self._emit_spot_balance(self.spot_accounts[order.api_key], order.update_time)
        self._emit_order(order, status if status != "CANCELED" else "CANCELED")

    # ------------------------------------------------------------------ queries and cancel
    def find_order(
        self,
        market: str,
        api_key: str,
        symbol: str,
        order_id: str | None,
        client_order_id: str | None,
        *,
        algo: bool = False,
        on_cancel: bool = False,
    ) -> SandboxOrder:
        if order_id is None and client_order_id is None:
            name = "algoId" if algo else "orderId"
            raise BinanceError(
                -1102,
                f"Param '{name}' or 'origClientOrderId' must be sent, but both were empty/null!",
            )
        match: SandboxOrder | None = None
        if order_id is not None:
            try:
                candidate = self.orders[market].get(int(order_id))
            except ValueError as exc:
                raise err.bad_parameter("orderId") from exc
            if (
                candidate is not None
                and candidate.api_key == api_key
                and candidate.symbol == symbol
            ):
                match = candidate
        else:
            for candidate in reversed(list(self.orders[market].values())):
                if (
                    candidate.api_key == api_key
                    and candidate.symbol == symbol
                    and candidate.client_order_id == client_order_id
                ):
                    match = candidate
                    break
        if match is None or match.is_algo != algo:
            if on_cancel:
                raise err.unknown_order_on_cancel()
            raise err.order_does_not_exist()
        return match

    def cancel(self, order: SandboxOrder) -> SandboxOrder:
        if not order.is_open:
            raise err.unknown_order_on_cancel()
        self._finish(order, "CANCELED")
        return order

    def modify_futures_order(self, api_key: str, params: dict[str, str]) -> SandboxOrder:
        """PUT /fapi/v1/order: change price and quantity of an open LIMIT order in place."""
        symbol = self.check_symbol(USDM, params.get("symbol"))
        order = self.find_order(
            USDM, api_key, symbol, params.get("orderId"), params.get("origClientOrderId")
        )
        if not order.is_open:
            raise BinanceError(-2013, "Order does not exist.")
        if order.type != "LIMIT":
            raise BinanceError(-4150, "Only limit order is supported for modification.")
        side = _required(params, "side").upper()
        if side != order.side:
            raise BinanceError(-4151, "Side of the order is not same as the original order.")
        quantity = _decimal(_required(params, "quantity"), "quantity")
        price = _decimal(_required(params, "price"), "price")
        rule = self.symbols[USDM][symbol]
        self._validate_filters(
            USDM, rule, quantity, price, float(price), reduce_only=order.reduce_only
        )
        if float(quantity) < order.executed_quantity:
            raise BinanceError(-4160, "Quantity less than filled quantity.")
        order.quantity = float(quantity)
        order.price = float(price)
        order.update_time = self.now
        self._emit_order(order, "AMENDMENT")
        bid, ask = self.bid_ask(symbol, USDM)
        if (order.side == "BUY" and order.price >= ask) or (
            order.side == "SELL" and order.price <= bid
        ):
            self._execute(order, ask if order.side == "BUY" else bid, self.now, is_maker=False)
        return order

    def open_orders(
        self, market: str, api_key: str, symbol: str | None, *, algo: bool = False
    ) -> list[SandboxOrder]:
        return [
            order
            for order in self.orders[market].values()
            if order.api_key == api_key
            and order.is_open
            and order.is_algo == algo
            and (symbol is None or order.symbol == symbol)
        ]

    def all_orders(
        self, market: str, api_key: str, symbol: str, *, algo: bool = False
    ) -> list[SandboxOrder]:
        return [
            order
            for order in self.orders[market].values()
            if order.api_key == api_key and order.symbol == symbol and order.is_algo == algo
        ]

    def trades(self, market: str, api_key: str, symbol: str) -> list[Fill]:
        return [
            fill for fill in self.fills[market] if fill.api_key == api_key and fill.symbol == symbol
        ]

    # ------------------------------------------------------------------ futures account
    def unrealized(self, position: FuturesPosition) -> float:
        if position.amount == 0.0:
            return 0.0
        return position.signed_amount * (self.price(position.symbol, USDM) - position.entry_price)

    def position_margin(self, account: FuturesAccount, position: FuturesPosition) -> float:
        leverage = account.leverage.get(position.symbol, self.config.default_leverage)
        return abs(position.amount) * position.entry_price / leverage

    def open_order_margin(self, account: FuturesAccount) -> float:
        total = 0.0
        for order in self.open_orders(USDM, account.api_key, None):
            if order.reduce_only or _is_closing_leg(order.side, order.position_side):
                continue
            leverage = account.leverage.get(order.symbol, self.config.default_leverage)
            total += (
                (order.quantity - order.executed_quantity)
                * (order.price or self.price(order.symbol, USDM))
                / leverage
            )
        return total

    def available_balance(self, account: FuturesAccount) -> float:
        wallet = sum(account.wallet.values())
        unrealized = sum(self.unrealized(position) for position in account.open_positions())
        used = sum(self.position_margin(account, position) for position in account.open_positions())
        return wallet + unrealized - used - self.open_order_margin(account)

    def set_leverage(self, api_key: str, symbol: str, leverage: int) -> int:
        self.check_symbol(USDM, symbol)
        if leverage < 1 or leverage > self.config.max_leverage:
            raise BinanceError(-4028, f"Leverage {leverage} is not valid")
        self.futures_accounts[api_key].leverage[symbol] = leverage
        return leverage

    def set_margin_type(self, api_key: str, symbol: str, margin_type: str) -> None:
        self.check_symbol(USDM, symbol)
        margin_type = margin_type.upper()
        if margin_type not in ("ISOLATED", "CROSSED"):
            raise BinanceError(-1116, "Invalid marginType.")
        account = self.futures_accounts[api_key]
        if account.margin_type.get(symbol, "CROSSED") == margin_type:
            raise BinanceError(-4046, "No need to change margin type.")
        if any(position.symbol == symbol for position in account.open_positions()):
            raise BinanceError(-4048, "Margin type cannot be changed if there exists position.")
        if self.open_orders(USDM, api_key, symbol):
            raise BinanceError(-4047, "Margin type cannot be changed if there exists open orders.")
        account.margin_type[symbol] = margin_type

    def set_dual_side(self, api_key: str, dual: bool) -> None:
        account = self.futures_accounts[api_key]
        if account.dual_side == dual:
            raise BinanceError(-4059, "No need to change position side.")
        if account.open_positions():
            raise BinanceError(-4068, "Position side cannot be changed if there exists position.")
        if self.open_orders(USDM, api_key, None) or self.open_orders(
            USDM, api_key, None, algo=True
        ):
            raise BinanceError(
                -4067, "Position side cannot be changed if there exists open orders."
            )
        account.dual_side = dual
        account.positions.clear()

    def position_rows(
        self, api_key: str, symbol: str | None, *, include_empty: bool
    ) -> list[dict[str, object]]:
        account = self.futures_accounts[api_key]
        sides = ("LONG", "SHORT") if account.dual_side else ("BOTH",)
        rows = []
        for name in self.symbols[USDM]:
            if symbol is not None and name != symbol:
                continue
            for side in sides:
                position = account.positions.get((name, side)) or FuturesPosition(name, side)
                if position.amount == 0.0 and not include_empty:
                    continue
                rows.append(self._position_row(account, position))
        return rows

    def _position_row(
        self, account: FuturesAccount, position: FuturesPosition
    ) -> dict[str, object]:
        mark = self.price(position.symbol, USDM)
        leverage = account.leverage.get(position.symbol, self.config.default_leverage)
        isolated = account.margin_type.get(position.symbol, "CROSSED") == "ISOLATED"
        notional = position.signed_amount * mark
        unrealized = self.unrealized(position)
        initial = abs(notional) / leverage
        maintenance = abs(notional) * self.config.maintenance_margin_rate
        isolated_wallet = self.position_margin(account, position) if isolated else 0.0
        wallet = sum(account.wallet.values())
        return {
            "symbol": position.symbol,
            "positionSide": position.position_side,
            "positionAmt": fmt(position.signed_amount),
            "entryPrice": fmt(position.entry_price),
            "breakEvenPrice": fmt(position.entry_price),
            "markPrice": fmt(mark),
            "unRealizedProfit": fmt(unrealized),
            "unrealizedProfit": fmt(unrealized),
            "liquidationPrice": fmt(self.liquidation_price(account, position)),
            "isolatedMargin": fmt(isolated_wallet + unrealized if isolated else 0.0),
            "isolatedWallet": fmt(isolated_wallet),
            "notional": fmt(notional),
            "marginAsset": self.symbols[USDM][position.symbol].quote_asset,
            "initialMargin": fmt(initial),
            "maintMargin": fmt(maintenance),
            "positionInitialMargin": fmt(initial),
            "openOrderInitialMargin": "0",
            "adl": 0,
            "bidNotional": "0",
            "askNotional": "0",
            "leverage": str(leverage),
            "isolated": isolated,
            "marginType": "isolated" if isolated else "cross",
            "maxNotionalValue": "1000000000",
            "crossWalletBalance": fmt(wallet),
            "crossMargin": fmt(wallet + unrealized),
            "updateTime": position.update_time,
        }

    def liquidation_price(self, account: FuturesAccount, position: FuturesPosition) -> float:
        """Where the position's margin would run out (isolated: its own margin; cross: the wallet)."""
        size = abs(position.amount)
        if size == 0.0:
            return 0.0
        mmr = self.config.maintenance_margin_rate
        if account.margin_type.get(position.symbol, "CROSSED") == "ISOLATED":
            margin = self.position_margin(account, position)
        else:
            # cross: the wallet and the other positions' results back this position, not its own PnL
            margin = (
                self.available_balance(account)
                + self.position_margin(account, position)
                - self.unrealized(position)
            )
        if position.signed_amount > 0:
            price = (position.entry_price * size - margin) / (size * (1.0 - mmr))
        else:
            price = (position.entry_price * size + margin) / (size * (1.0 + mmr))
        return max(price, 0.0)

    def futures_account_view(self, api_key: str) -> dict[str, object]:
        account = self.futures_accounts[api_key]
        positions = account.open_positions()
        unrealized = sum(self.unrealized(position) for position in positions)
        position_margin = sum(self.position_margin(account, position) for position in positions)
        order_margin = self.open_order_margin(account)
        available = self.available_balance(account)
        wallet_total = sum(account.wallet.values())
        assets = []
        for asset, balance in sorted(account.wallet.items()):
            is_main = asset == "USDT"
            assets.append(
                {
                    "asset": asset,
                    "walletBalance": fmt(balance),
                    "unrealizedProfit": fmt(unrealized if is_main else 0.0),
                    "marginBalance": fmt(balance + (unrealized if is_main else 0.0)),
                    "maintMargin": "0",
                    "initialMargin": fmt(position_margin + order_margin if is_main else 0.0),
                    "positionInitialMargin": fmt(position_margin if is_main else 0.0),
                    "openOrderInitialMargin": fmt(order_margin if is_main else 0.0),
                    "crossWalletBalance": fmt(balance),
                    "crossUnPnl": fmt(unrealized if is_main else 0.0),
                    "availableBalance": fmt(available if is_main else balance),
                    "maxWithdrawAmount": fmt(max(available, 0.0) if is_main else balance),
                    "marginAvailable": True,
                    "updateTime": self.now,
                }
            )
        return {
            "feeTier": 0,
            "canTrade": self.can_trade.get(api_key, False),
            "canDeposit": True,
            "canWithdraw": True,
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
            "updateTime": self.now,
            "totalInitialMargin": fmt(position_margin + order_margin),
            "totalMaintMargin": fmt(
                sum(abs(p.amount) * self.price(p.symbol, USDM) for p in positions)
                * self.config.maintenance_margin_rate
            ),
            "totalWalletBalance": fmt(wallet_total),
            "totalUnrealizedProfit": fmt(unrealized),
            "totalMarginBalance": fmt(wallet_total + unrealized),
            "totalPositionInitialMargin": fmt(position_margin),
            "totalOpenOrderInitialMargin": fmt(order_margin),
            "totalCrossWalletBalance": fmt(wallet_total),
            "totalCrossUnPnl": fmt(unrealized),
            "availableBalance": fmt(available),
            "maxWithdrawAmount": fmt(max(available, 0.0)),
            "assets": assets,
            "positions": [self._position_row(account, position) for position in positions],
        }

    # ------------------------------------------------------------------ ledger
    def ledger(self) -> dict[str, object]:
        """Everything a test may want to assert on, as plain data."""
        accounts: dict[str, object] = {}
        for api_key in self.secrets:
            spot = self.spot_accounts[api_key]
            futures = self.futures_accounts[api_key]
            accounts[api_key] = {
                "spot_balances": {
                    asset: {
                        "free": spot.free.get(asset, 0.0),
                        "locked": spot.locked.get(asset, 0.0),
                    }
                    for asset in sorted(set(spot.free) | set(spot.locked))
                },
                "futures_wallet": dict(futures.wallet),
                "futures_available": self.available_balance(futures),
                "dual_side_position": futures.dual_side,
                "leverage": dict(futures.leverage),
                "margin_type": dict(futures.margin_type),
                "positions": [
                    {
                        "symbol": position.symbol,
                        "position_side": position.position_side,
                        "amount": position.signed_amount,
                        "entry_price": position.entry_price,
                        "unrealized_pnl": self.unrealized(position),
                        "realized_pnl": position.realized_pnl,
                        "liquidation_price": self.liquidation_price(futures, position),
                    }
                    for position in futures.open_positions()
                ],
            }
        return {
            "time": self.now,
            "prices": {symbol: self.price(symbol) for symbol in self.series},
            "accounts": accounts,
            "orders": [
                order.to_ledger()
                for market in (SPOT, USDM)
                for order in self.orders[market].values()
            ],
            "fills": [fill.to_ledger() for market in (SPOT, USDM) for fill in self.fills[market]],
            "funding": list(self.funding),
        }

    # ------------------------------------------------------------------ user data events
    def _emit_order(self, order: SandboxOrder, execution: str, fill: Fill | None = None) -> None:
        time = order.update_time or order.time
        if order.market == SPOT:
            payload: dict[str, object] = {
                "e": "executionReport",
                "E": time,
                "s": order.symbol,
                "c": order.client_order_id,
                "S": order.side,
                "o": order.type,
                "f": order.time_in_force,
                "q": fmt(order.quantity),
                "p": fmt(order.price),
                "P": fmt(order.stop_price),
                "F": "0",
                "g": -1,
                "C": "",
                "x": execution,
                "X": order.status,
                "r": "NONE",
                "i": order.order_id,
                "l": fmt(fill.quantity) if fill else "0",
                "z": fmt(order.executed_quantity),
                "L": fmt(fill.price) if fill else "0",
                "n": fmt(fill.commission) if fill else "0",
                "N": fill.commission_asset if fill else None,
                "T": time,
                "t": fill.trade_id if fill else -1,
                "I": 0,
                "w": order.is_open,
                "m": fill.is_maker if fill else False,
                "M": False,
                "O": order.time,
                "Z": fmt(order.cumulative_quote),
                "Y": fmt(fill.quote_quantity) if fill else "0",
                "Q": fmt(order.quote_order_quantity),
                "W": order.time,
                "V": "EXPIRE_MAKER",
            }
            self.listener(SPOT, order.api_key, payload)
            return
        payload = {
            "e": "ORDER_TRADE_UPDATE",
            "E": time,
            "T": time,
            "o": {
                "s": order.symbol,
                "c": order.client_order_id,
                "S": order.side,
                "o": order.type,
                "f": order.time_in_force,
                "q": fmt(order.quantity),
                "p": fmt(order.price),
                "ap": fmt(order.average_price),
                "sp": fmt(order.stop_price),
                "x": execution,
                "X": order.status,
                "i": order.order_id,
                "l": fmt(fill.quantity) if fill else "0",
                "z": fmt(order.executed_quantity),
                "L": fmt(fill.price) if fill else "0",
                "N": fill.commission_asset if fill else "USDT",
                "n": fmt(fill.commission) if fill else "0",
                "T": time,
                "t": fill.trade_id if fill else 0,
                "b": "0",
                "a": "0",
                "m": fill.is_maker if fill else False,
                "R": order.reduce_only,
                "wt": "CONTRACT_PRICE",
                "ot": order.type,
                "ps": order.position_side,
                "cp": order.close_position,
                "rp": fmt(fill.realized_pnl) if fill else "0",
                "pP": False,
                "si": 0,
                "ss": 0,
                "V": "EXPIRE_MAKER",
                "pm": "NONE",
                "gtd": 0,
            },
        }
        self.listener(USDM, order.api_key, payload)

    def _emit_algo(self, order: SandboxOrder) -> None:
        time = order.update_time or order.time
        payload = {
            "e": "ALGO_UPDATE",
            "T": time,
            "E": time,
            "o": {
                "caid": order.client_order_id,
                "aid": order.order_id,
                "at": "CONDITIONAL",
                "o": order.type,
                "s": order.symbol,
                "S": order.side,
                "ps": order.position_side,
                "f": order.time_in_force,
                "q": fmt(order.quantity),
                "X": order.algo_status,
                "ai": "" if order.actual_order_id is None else str(order.actual_order_id),
                "ap": "0",
                "aq": "0",
                "act": "0",
                "tp": fmt(order.stop_price),
                "p": fmt(order.price),
                "V": "EXPIRE_MAKER",
                "wt": "CONTRACT_PRICE",
                "pm": "NONE",
                "cp": order.close_position,
                "pP": False,
                "R": order.reduce_only,
                "tt": time if order.triggered else 0,
                "gtd": 0,
            },
        }
        self.listener(USDM, order.api_key, payload)

    def _emit_spot_balance(self, account: SpotAccount, time: int) -> None:
        payload = {
            "e": "outboundAccountPosition",
            "E": time,
            "u": time,
            "B": [
                {"a": row["asset"], "f": row["free"], "l": row["locked"]}
                for row in account.balances()
            ],
        }
        self.listener(SPOT, account.api_key, payload)

    def _emit_account(self, account: FuturesAccount, *, reason: str, time: int) -> None:
        positions = []
        for position in account.positions.values():
            positions.append(
                {
                    "s": position.symbol,
                    "pa": fmt(position.signed_amount),
                    "ep": fmt(position.entry_price),
                    "bep": fmt(position.entry_price),
                    "cr": fmt(position.realized_pnl),
                    "up": fmt(self.unrealized(position)),
                    "mt": account.margin_type.get(position.symbol, "CROSSED")
                    .lower()
                    .replace("crossed", "cross"),
                    "iw": "0",
                    "ps": position.position_side,
                }
            )
        payload = {
            "e": "ACCOUNT_UPDATE",
            "E": time,
            "T": time,
            "a": {
                "m": reason,
                "B": [
                    {"a": asset, "wb": fmt(balance), "cw": fmt(balance), "bc": "0"}
                    for asset, balance in account.wallet.items()
                ],
                "P": positions,
            },
        }
        self.listener(USDM, account.api_key, payload)


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise err.missing_parameter(name)
    return value


def _is_closing_leg(side: str, position_side: str) -> bool:
    return (position_side == "LONG" and side == "SELL") or (
        position_side == "SHORT" and side == "BUY"
    )


def _split_quantity(
    side: str, position_side: str, quantity: float, position: FuturesPosition
) -> tuple[float, float]:
    """How much of an order opens exposure and how much closes the existing position."""
    if position_side in ("LONG", "SHORT"):
        if _is_closing_leg(side, position_side):
            closing = min(quantity, abs(position.amount))
            return quantity - closing, closing
        return quantity, 0.0
    held = position.amount
    if held == 0.0 or (held > 0) == (side == "BUY"):
        return quantity, 0.0
    closing = min(quantity, abs(held))
    return quantity - closing, closing


def _is_stop(order: SandboxOrder) -> bool:
    return order.type in STOP_TYPES


def _would_trigger(order: SandboxOrder, price: float) -> bool:
    """True when the trigger is already crossed at ``price`` (Binance rejects such orders)."""
    buy = order.side == "BUY"
    if _is_stop(order):
        return price >= order.stop_price if buy else price <= order.stop_price
    return price <= order.stop_price if buy else price >= order.stop_price


def _crossed_trigger(order: SandboxOrder, bar: BarPrices) -> bool:
    buy = order.side == "BUY"
    if _is_stop(order):
        return bar.high >= order.stop_price if buy else bar.low <= order.stop_price
    return bar.low <= order.stop_price if buy else bar.high >= order.stop_price


def _trigger_fill_price(order: SandboxOrder, bar: BarPrices) -> float:
    """A triggered market order fills at its trigger, or at the open when the bar gapped past it."""
    if not order.stop_price:
        return bar.open
    return bar.open if _would_trigger(order, bar.open) else order.stop_price
