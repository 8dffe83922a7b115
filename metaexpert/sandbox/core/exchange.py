"""The matching core: accounts, order books of resting orders, the candle clock, fills and fees.

Knows no venue: markets are ``MarketSpec``s named by the venue that serves them, orders arrive
as ``OrderRequest``s the venue parsed, refusals leave as ``Reject(reason)`` and state changes as
neutral events (``core/events.py``) that each venue renders in its own stream shapes. Price-path
rules are in ``core/matching.py``, margin arithmetic in ``core/margin.py``, order placement in
``core/placement.py`` and fill booking in ``core/execution.py`` (mixins of this class). About 530
lines, on purpose: the clock, the price sources (candles, forced prices, replayed trades, option
premiums) and the resting-order sweep are one state machine that reads best in one place.

Fills: a marketable order fills at once at the current price +/- half ``spread_bps``; resting
orders fill when a replayed bar (or a forced price, or a replayed trade) crosses them. With
``SandboxConfig.fill_volume_fraction`` set, one bar fills at most that fraction of its recorded
volume per order (the rest stays open, PARTIALLY_FILLED; a market order's unfilled rest expires),
so partial fills happen as the market's own volume allows. Spot buys pay the fee in the coin
received (buying 0.01 BTC credits 0.01 minus the fee), sells in the quote coin.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from decimal import Decimal

from metaexpert.core.timeframe import Timeframe
from metaexpert.sandbox.config import SandboxConfig
from metaexpert.sandbox.core.events import AlgoEvent, Event, Listener, OrderEvent
from metaexpert.sandbox.core.execution import ExecutionMixin
from metaexpert.sandbox.core.margin import MarginBook
from metaexpert.sandbox.core.market_data import CandleSeries, Kline, find_candle_file
from metaexpert.sandbox.core.matching import (
    BarPrices,
    crossed_trigger,
    trigger_fill_price,
    update_trailing,
)
from metaexpert.sandbox.core.model import (
    MARKET_FILL_KINDS,
    Fill,
    FuturesAccount,
    FuturesPosition,
    MarketKind,
    MarketSpec,
    OrderKind,
    SandboxOrder,
    SpotAccount,
)
from metaexpert.sandbox.core.options import OptionSpec, premium, premium_path
from metaexpert.sandbox.core.placement import PlacementMixin
from metaexpert.sandbox.core.rejects import Reject, RejectReason


def _ignore(_event: Event) -> None:
    return None


class SandboxExchange(PlacementMixin, ExecutionMixin):
    """State and rules of the simulated markets of one venue.

    Not thread-safe on purpose: the server runs every call on its event loop thread.
    """

    def __init__(
        self,
        config: SandboxConfig,
        markets: list[MarketSpec],
        listener: Listener | None = None,
        *,
        unified: bool = False,
        hedge_reduce_only: bool = False,
        unique_client_ids: bool = False,
    ) -> None:
        self.config = config
        self.timeframe = Timeframe.parse(config.timeframe)
        self.listener: Listener = listener or _ignore
        self.markets = {market.name: market for market in markets}
        self.symbols = {market.name: market.rules for market in markets}
        self.series: dict[str, CandleSeries] = {}  # by candle symbol
        self._candle_of: dict[str, str] = {}  # market symbol -> candle symbol it replays
        self._group: dict[str, list[str]] = {}  # candle symbol -> market symbols replaying it
        self._options: dict[str, OptionSpec] = {}
        for market in markets:
            for symbol, spec in market.options.items():
                assert isinstance(spec, OptionSpec)
                self._options[symbol] = spec
            for symbol in market.rules:
                candle = market.candles.get(symbol, symbol)
                self._candle_of[symbol] = candle
                group = self._group.setdefault(candle, [candle])
                if symbol not in group:
                    group.append(symbol)
                if candle not in self.series:
                    path = find_candle_file(config.data_dir, candle, self.timeframe)
                    self.series[candle] = CandleSeries(candle, path, self.timeframe)
        self._align_start()
        self.spot_market = next((m.name for m in markets if m.kind is MarketKind.SPOT), None)
        self.spot_accounts = {
            a.api_key: SpotAccount(a.api_key, dict(a.spot_balances)) for a in config.accounts
        }
        # unified: every derivative market settles into the spot balances themselves (one wallet
        # per coin, as Bybit's unified trading account); classic: a wallet per market
        self.unified = unified
        self.margin_accounts: dict[str, dict[str, FuturesAccount]] = {
            market.name: {
                a.api_key: FuturesAccount(
                    a.api_key,
                    self.spot_accounts[a.api_key].free
                    if unified
                    else dict(self._starting_wallet(market, a)),
                    market=market.name,
                    unified=unified,
                )
                for a in config.accounts
            }
            for market in markets
            if market.is_derivative
        }
        self.hedge_reduce_only = hedge_reduce_only
        self.unique_client_ids = unique_client_ids
        self.secrets = {account.api_key: account.secret for account in config.accounts}
        self.can_trade = {account.api_key: account.can_trade for account in config.accounts}
        self.orders: dict[str, dict[int, SandboxOrder]] = {market.name: {} for market in markets}
        # symbol -> orders that may still fill; pruned lazily so a long replay stays O(open orders)
        self._resting: dict[str, dict[int, SandboxOrder]] = {}
        self.fills: dict[str, list[Fill]] = {market.name: [] for market in markets}
        self.funding: list[dict[str, object]] = []  # payments: one per position and funding time
        # every funding event of every perpetual (market, symbol, time, rate, mark), held or not,
        # as a venue's funding-rate history lists them
        self.funding_rates: list[dict[str, object]] = []
        self.price_override: dict[str, float] = {}
        self.trade_price: dict[tuple[str, str], float] = {}
        # (order id, bar time) -> volume already filled from that bar, for fill_volume_fraction
        self._bar_volume_used: dict[tuple[int, int], float] = {}
        self._order_ids = itertools.count(1_000_001)
        self._trade_ids = itertools.count(5_000_001)
        self.margin = MarginBook(self)

    @staticmethod
    def _starting_wallet(market: MarketSpec, account: object) -> dict[str, float]:
        if market.kind is MarketKind.INVERSE:
            return dict(account.coin_balances)
        return dict(account.futures_balances)

    @property
    def futures_accounts(self) -> dict[str, FuturesAccount]:
        """The accounts of the first linear market (what the ledger has always called futures)."""
        for name, accounts in self.margin_accounts.items():
            if self.markets[name].kind is MarketKind.LINEAR:
                return accounts
        return next(iter(self.margin_accounts.values()), {})

    def candle_of(self, symbol: str) -> str:
        return self._candle_of.get(symbol, symbol)

    def series_of(self, symbol: str) -> CandleSeries:
        return self.series[self.candle_of(symbol)]

    def next_order_id(self) -> int:
        return next(self._order_ids)

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

    def check_symbol(self, market: str, symbol: str) -> str:
        if symbol not in self.symbols[market]:
            raise Reject(RejectReason.UNKNOWN_SYMBOL, market=market, detail=symbol)
        return symbol

    def price(self, symbol: str, market: str | None = None) -> float:
        """Current price: a forced price, else the last replayed trade of ``market`` (trade
        matching), else the close of the latest replayed candle."""
        option = self._options.get(symbol)
        if option is not None:
            underlying = self.price(option.underlying)
            return premium(option, underlying, self.now, self.config.option_volatility)
        if symbol in self.price_override:
            return self.price_override[symbol]
        if market is not None and (market, symbol) in self.trade_price:
            return self.trade_price[(market, symbol)]
        series = self.series_of(symbol)
        return float(series.closes[series.cursor])

    def klines_of(self, symbol: str, klines: list[Kline]) -> list[Kline]:
        """``symbol``'s candles from its series' klines: an option's are its premium path over
        the underlying's (they were the underlying's prices, 105,000 for a 0.094 BTC premium)."""
        option = self._options.get(symbol)
        if option is None:
            return klines
        volatility = self.config.option_volatility
        result = []
        for kline in klines:
            path = BarPrices(kline.open, kline.high, kline.low, kline.close, kline.close_time)
            values = premium_path(option, path, volatility)
            result.append(
                dataclasses.replace(
                    kline, open=values.open, high=values.high, low=values.low, close=values.close
                )
            )
        return result

    def bid_ask(self, symbol: str, market: str | None = None) -> tuple[float, float]:
        price = self.price(symbol, market)
        half = price * self.config.spread_bps / 20_000.0
        return price - half, price + half

    def last_bar(self, symbol: str) -> Kline:
        series = self.series_of(symbol)
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
                bar = series.bar(series.cursor)
                produced.append((symbol, bar))
                path = BarPrices(bar.open, bar.high, bar.low, bar.close, series.current_time)
                for member in self._group[symbol]:
                    self.price_override.pop(member, None)
                    self._match_symbol(member, self._path_of(member, path))
            if not moved:
                break
            self.margin.apply_funding(before, self.now)
            self._bar_volume_used.clear()
        return produced

    def set_price(self, symbol: str, price: float) -> None:
        """Move the current price of ``symbol`` (and of every market symbol replaying the same
        candles) until the next bar, and fill what the move crosses."""
        if symbol not in self.series and symbol not in self._candle_of:
            raise Reject(RejectReason.UNKNOWN_SYMBOL, detail=symbol)
        if not math.isfinite(price) or price <= 0:
            raise ValueError(f"price must be a positive number, got {price}")
        if symbol in self._options:
            raise ValueError(f"{symbol} is an option: move its underlying instead")
        before = self.price(self.candle_of(symbol))  # the underlying, before the move
        group = self._group[self.candle_of(symbol)]
        # plain symbols first: options are priced from the underlying they just moved
        for member in sorted(group, key=lambda name: name in self._options):
            if member in self._options:
                move = BarPrices(
                    before, max(before, price), min(before, price), float(price), self.now
                )
                self._match_symbol(member, self._path_of(member, move))
                continue
            previous = self.price(member)
            self.price_override[member] = float(price)
            self.trade_price = {
                key: value for key, value in self.trade_price.items() if key[1] != member
            }
            # The price travels from where it was to the new value: orders in between fill at their
            # own prices, as they would on a continuous move.
            self._match_symbol(
                member,
                BarPrices(
                    previous, max(previous, price), min(previous, price), float(price), self.now
                ),
            )

    def apply_trade(self, data_market: str, candle: str, price: float, time: int) -> None:
        """A replayed trade of a recording (``candle`` symbol) moves the price of the market symbols
        that replay that recording and fills what it crosses."""
        for market in self.markets.values():
            if market.data_market != data_market:
                continue
            for symbol in self._group.get(candle, [candle]):
                if symbol not in market.rules or symbol in self.price_override:
                    continue
                previous = self.price(symbol, market.name)
                self.trade_price[(market.name, symbol)] = price
                path = BarPrices(previous, max(previous, price), min(previous, price), price, time)
                self._match_symbol(symbol, path, market=market.name)

    def _match_symbol(self, symbol: str, bar: BarPrices, market: str | None = None) -> None:
        for name in self.margin_accounts:
            if symbol in self.symbols[name] and market in (None, name):
                self.margin.liquidate(name, symbol, bar)
        resting = self._resting.get(symbol, {})
        for order_id in sorted(resting):
            order = resting[order_id]
            if order.is_open and (market is None or order.market == market):
                self._try_fill(order, bar)
        for order_id in [order_id for order_id, order in resting.items() if not order.is_open]:
            del resting[order_id]

    def _path_of(self, symbol: str, underlying: BarPrices) -> BarPrices:
        option = self._options.get(symbol)
        if option is None:
            return underlying
        return premium_path(option, underlying, self.config.option_volatility)

    def register(self, order: SandboxOrder) -> None:
        self.orders[order.market][order.order_id] = order
        self._resting.setdefault(order.symbol, {})[order.order_id] = order

    def _try_fill(self, order: SandboxOrder, bar: BarPrices) -> None:
        if order.is_conditional and not order.triggered:
            if not crossed_trigger(order, bar) and not update_trailing(order, bar):
                return
            self._trigger(order, bar)
            if order.is_algo or not order.is_open:
                return
        if order.kind in MARKET_FILL_KINDS:
            fill_price = trigger_fill_price(order, bar)
            self._execute_bar(order, self._with_spread(order.side, fill_price), bar, is_maker=False)
            return
        limit = order.price
        if order.side == "BUY" and bar.low <= limit:
            self._execute_bar(order, min(limit, bar.open), bar, is_maker=True)
        elif order.side == "SELL" and bar.high >= limit:
            self._execute_bar(order, max(limit, bar.open), bar, is_maker=True)

    def _execute_bar(
        self, order: SandboxOrder, price: float, bar: BarPrices, *, is_maker: bool
    ) -> None:
        """Fill from a replayed bar, no more than its share of the bar's volume when limited."""
        fraction = self.config.fill_volume_fraction
        series = self.series_of(order.symbol)
        if fraction is None or bar.time != series.current_time:
            self.execute(order, price, bar.time, is_maker=is_maker)
            return
        key = (order.order_id, bar.time)
        volume = float(series.volumes[series.cursor]) * fraction - self._bar_volume_used.get(
            key, 0.0
        )
        step = self.symbols[order.market][order.symbol].step_size
        allowed = math.floor(volume / step + 1e-9) * step
        if allowed <= 0:
            if order.kind in MARKET_FILL_KINDS:
                self.finish(order, "EXPIRED", bar.time)
            return
        self._bar_volume_used[key] = self._bar_volume_used.get(key, 0.0) + allowed
        self.execute(order, price, bar.time, is_maker=is_maker, limit=allowed)
        if order.is_open and order.kind in MARKET_FILL_KINDS:
            self.finish(order, "EXPIRED", bar.time)

    def _trigger(self, order: SandboxOrder, bar: BarPrices) -> None:
        order.triggered = True
        order.update_time = bar.time
        if not order.is_algo:
            self.listener(OrderEvent(order, "NEW"))
            return
        # An algo order hands over to a new plain order, as the venues' conditional services do.
        child_kind = OrderKind.MARKET if order.kind in MARKET_FILL_KINDS else OrderKind.LIMIT
        child = SandboxOrder(
            market=order.market,
            api_key=order.api_key,
            order_id=self.next_order_id(),
            client_order_id=f"algo{order.order_id}",
            symbol=order.symbol,
            side=order.side,
            type=str(child_kind),
            kind=child_kind,
            quantity=order.quantity,
            price=order.price if child_kind is OrderKind.LIMIT else 0.0,
            stop_price=0.0,
            time_in_force="GTC",
            time=bar.time,
            position_side=order.position_side,
            reduce_only=order.reduce_only or order.close_position,
            close_position=order.close_position,
        )
        if order.close_position:
            position = self.margin_accounts[order.market][order.api_key].position(
                order.symbol, order.position_side
            )
            child.quantity = abs(position.amount)
        # The coin a spot algo order locked is the coin its child sells.
        child.locked_asset, child.locked_amount = order.locked_asset, order.locked_amount
        order.locked_asset, order.locked_amount = None, 0.0
        order.algo_status = "FINISHED"
        order.actual_order_id = child.order_id
        self.listener(AlgoEvent(order))
        if child.quantity <= 0:
            order.algo_status = "CANCELED"
            self.listener(AlgoEvent(order))
            return
        self.register(child)
        self.listener(OrderEvent(child, "NEW"))
        if child_kind is OrderKind.MARKET:
            fill_price = trigger_fill_price(order, bar)
            self._execute_bar(child, self._with_spread(order.side, fill_price), bar, is_maker=False)
        else:
            self._try_fill(child, bar)

    def _with_spread(self, side: str, price: float) -> float:
        half = price * self.config.spread_bps / 20_000.0
        return price + half if side == "BUY" else price - half

    # ------------------------------------------------------------------ queries, cancel, amend
    def find_order(
        self,
        market: str,
        api_key: str,
        symbol: str | None,
        order_id: int | None,
        client_order_id: str | None,
        *,
        algo: bool = False,
        on_cancel: bool = False,
    ) -> SandboxOrder:
        """One order of ``api_key`` by id or client id (``symbol`` None = any symbol)."""
        match: SandboxOrder | None = None
        if order_id is not None:
            candidate = self.orders[market].get(order_id)
            if (
                candidate is not None
                and candidate.api_key == api_key
                and symbol in (None, candidate.symbol)
            ):
                match = candidate
        else:
            for candidate in reversed(list(self.orders[market].values())):
                if (
                    candidate.api_key == api_key
                    and symbol in (None, candidate.symbol)
                    and candidate.client_order_id == client_order_id
                    and candidate.is_algo == algo
                ):
                    match = candidate
                    break
        if match is None or match.is_algo != algo:
            raise Reject(
                RejectReason.CANCEL_UNKNOWN_ORDER if on_cancel else RejectReason.ORDER_NOT_FOUND,
                market=market,
            )
        return match

    def cancel(self, order: SandboxOrder) -> SandboxOrder:
        if not order.is_open:
            raise Reject(RejectReason.CANCEL_UNKNOWN_ORDER, market=order.market)
        self.finish(order, "CANCELED")
        return order

    def amend(
        self,
        order: SandboxOrder,
        side: str | None,
        quantity: Decimal | None,
        price: Decimal | None,
        stop_price: float | None = None,
    ) -> SandboxOrder:
        """Change quantity / price (or the trigger of a conditional order) of an open order in place."""
        if not order.is_open:
            raise Reject(RejectReason.ORDER_NOT_FOUND, market=order.market)
        if (
            not (order.is_conditional and stop_price is not None)
            and order.kind is not OrderKind.LIMIT
        ):
            raise Reject(RejectReason.AMEND_NOT_LIMIT, market=order.market)
        if side is not None and side != order.side:
            raise Reject(RejectReason.AMEND_SIDE_CHANGED, market=order.market)
        if order.is_conditional and stop_price is not None:
            order.stop_price = stop_price
        new_quantity = quantity if quantity is not None else Decimal(repr(order.quantity))
        new_price = (
            price if price is not None else (Decimal(repr(order.price)) if order.price else None)
        )
        self._validate_filters(
            order.market,
            new_quantity,
            new_price,
            order.price or self.price(order.symbol, order.market),
            order.symbol,
            order.reduce_only,
        )
        if float(new_quantity) < order.executed_quantity:
            raise Reject(RejectReason.AMEND_BELOW_FILLED, market=order.market)
        order.quantity = float(new_quantity)
        if new_price is not None:
            order.price = float(new_price)
        order.update_time = self.now
        if order.is_algo:
            self.listener(AlgoEvent(order))
            return order
        self.listener(OrderEvent(order, "AMENDMENT"))
        bid, ask = self.bid_ask(order.symbol, order.market)
        if order.kind is OrderKind.LIMIT and (
            (order.side == "BUY" and order.price >= ask)
            or (order.side == "SELL" and order.price <= bid)
        ):
            self.execute(order, ask if order.side == "BUY" else bid, self.now, is_maker=False)
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
        self, market: str, api_key: str, symbol: str | None, *, algo: bool = False
    ) -> list[SandboxOrder]:
        return [
            order
            for order in self.orders[market].values()
            if order.api_key == api_key and symbol in (None, order.symbol) and order.is_algo == algo
        ]

    def trades(self, market: str, api_key: str, symbol: str | None) -> list[Fill]:
        return [
            fill
            for fill in self.fills[market]
            if fill.api_key == api_key and symbol in (None, fill.symbol)
        ]

    def positions(
        self, market: str, api_key: str, symbol: str | None, *, include_empty: bool
    ) -> list[FuturesPosition]:
        """Position legs of one account (empty legs too when asked, as some venues list them)."""
        account = self.margin_accounts[market][api_key]
        sides = ("LONG", "SHORT") if account.dual_side else ("BOTH",)
        rows = []
        for name in self.symbols[market]:
            if symbol is not None and name != symbol:
                continue
            for side in sides:
                position = account.positions.get((name, side)) or FuturesPosition(
                    name, side, market=market
                )
                if position.amount == 0.0 and not include_empty:
                    continue
                rows.append(position)
        return rows

    # ------------------------------------------------------------------ ledger
    def ledger(self) -> dict[str, object]:
        """Everything a test may want to assert on, as plain data (``core/ledger.py``)."""
        from metaexpert.sandbox.core.ledger import ledger

        return ledger(self)
