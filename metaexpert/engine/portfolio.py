"""Portfolio accounting: cash, positions, margin, equity; the engine's PortfolioView.

Accounting model (the same in every mode):
- Spot: ``balance`` is quote cash. A buy pays ``quantity * price + fee``, a sell receives
  ``quantity * price - fee`` (fees are charged in the quote currency, as when paying fees
  with a quote-denominated balance). Spot cannot be shorted; equity is cash plus holdings.
- Futures: ``balance`` is the wallet balance. Fills change it only by realised PnL and fees;
  each position locks initial margin ``notional / leverage``; equity is wallet plus
  unrealised PnL. Linear contracts settle in the quote currency, inverse in the base coin.
"""

from __future__ import annotations

from datetime import UTC, datetime

from metaexpert.core.account import Account
from metaexpert.core.enums import MarginMode, OrderSide, PositionMode, PositionSide, TradeMode
from metaexpert.core.market import MarketSpec, OrderBook
from metaexpert.core.order import Order, Trade
from metaexpert.core.position import Position, PositionChange, PositionLedger
from metaexpert.core.series import BarSeries
from metaexpert.core.timeframe import DAY_MS


class Portfolio:
    """Owns the account and the position ledger; answers PortfolioView queries."""

    def __init__(
        self,
        *,
        currency: str,
        initial_capital: float,
        markets: dict[str, MarketSpec],
        position_mode: PositionMode = PositionMode.ONEWAY,
        margin_mode: MarginMode = MarginMode.ISOLATED,
        trade_mode: TradeMode = TradeMode.BACKTEST,
        leverage: float = 1.0,
    ) -> None:
        self.account = Account(currency=currency, balance=float(initial_capital))
        self.initial_capital = float(initial_capital)
        self.markets = markets
        self._derivative = {symbol: spec.is_derivative for symbol, spec in markets.items()}
        self._any_derivative = any(self._derivative.values())
        self._templates: dict[tuple[str, float, MarginMode], Position] = {}
        self.ledger = PositionLedger(position_mode=position_mode)
        self.margin_mode = margin_mode
        self._trade_mode = trade_mode
        self.leverage: dict[str, float] = {symbol: float(leverage) for symbol in markets}
        self.last_prices: dict[str, float] = {}
        #: Mark prices of perpetuals where recorded: they value derivative positions (unrealised PnL,
        #: equity, margin) as venues do; without one a position is marked at the last traded price.
        self.mark_prices: dict[str, float] = {}
        self.series: dict[tuple[str, str], BarSeries] = {}
        self.base_timeframe: str = ""
        self.books: dict[str, OrderBook] = {}
        self.orders: dict[str, Order] = {}  # open orders by client order id
        self._now_ms = 0
        self._peak_equity = float(initial_capital)
        self._day = -1
        self._day_start_equity = float(initial_capital)
        self.realized_pnl = 0.0
        self.funding = 0.0  # net perpetual funding booked (> 0 received)

    # ---------------------------------------------------------------- PortfolioView
    @property
    def now_ms(self) -> int:
        return self._now_ms

    @property
    def trade_mode(self) -> TradeMode:
        return self._trade_mode

    @property
    def position_mode(self) -> PositionMode:
        return self.ledger.position_mode

    @property
    def peak_equity(self) -> float:
        return self._peak_equity

    @property
    def day_start_equity(self) -> float:
        return self._day_start_equity

    def positions(self, symbol: str | None = None) -> list[Position]:
        return self.ledger.open_positions(symbol)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [
            o
            for o in self.orders.values()
            if o.status.is_open and (symbol is None or o.symbol == symbol)
        ]

    def market(self, symbol: str) -> MarketSpec:
        try:
            return self.markets[symbol]
        except KeyError:
            known = ", ".join(sorted(self.markets)) or "none"
            raise KeyError(f"unknown symbol {symbol!r}; this expert trades: {known}") from None

    def last_price(self, symbol: str) -> float:
        return self.last_prices.get(symbol, 0.0)

    def bars(self, symbol: str, timeframe: str | None = None) -> BarSeries:
        key = (symbol, timeframe or self.base_timeframe)
        try:
            return self.series[key]
        except KeyError:
            have = ", ".join(f"{s} {t}" for s, t in sorted(self.series)) or "none"
            raise KeyError(f"no bars for {key[0]} {key[1]}; subscribed: {have}") from None

    def order_book(self, symbol: str) -> OrderBook | None:
        return self.books.get(symbol)

    # ---------------------------------------------------------------- time & marks
    def set_time(self, timestamp_ms: int) -> None:
        self._now_ms = timestamp_ms
        day = timestamp_ms // DAY_MS
        if day != self._day:
            self._day = day
            self._day_start_equity = self.account.equity

    def mark(self, symbol: str, price: float) -> float:
        """Record a price for ``symbol`` and return the updated equity."""
        self.last_prices[symbol] = price
        return self.revalue()

    def revalue(self) -> float:
        """Mark every open position at its last price; returns the new equity.

        Called on every bar while a position is open, so it avoids per-call property
        lookups: spot holdings are valued inline, derivatives through their PnL.
        """
        account = self.account
        holdings = unrealized = margin = 0.0
        last_prices = self.last_prices
        marks = self.mark_prices
        derivative = self._derivative
        for position in self.ledger.positions.values():
            quantity = position.quantity
            if quantity <= 0:
                continue
            symbol = position.symbol
            price = last_prices.get(symbol, position.entry_price)
            if derivative.get(symbol, False):
                if marks:
                    price = marks.get(symbol, price)
                position.mark_price = price
                unrealized += position.pnl_at(price)
                margin += position.initial_margin
            else:
                position.mark_price = price
                holdings += quantity * price
        account.unrealized_pnl = unrealized
        account.used_margin = margin
        equity = account.balance + holdings + unrealized
        account.equity = equity
        self._peak_equity = max(self._peak_equity, equity)
        return equity

    # ---------------------------------------------------------------- fills
    def fee_for(
        self, spec: MarketSpec, quantity: float, price: float, maker: bool
    ) -> tuple[float, str]:
        rate = spec.maker_fee if maker else spec.taker_fee
        if spec.is_inverse:
            return quantity * spec.contract_size / price * rate, spec.settlement_currency
        return quantity * price * spec.contract_size * rate, spec.settlement_currency

    def template(self, symbol: str) -> Position:
        """The facts a new leg of ``symbol`` starts with (read-only; cached per leverage and margin mode)."""
        leverage = self.leverage.get(symbol, 1.0)
        key = (symbol, leverage, self.margin_mode)
        template = self._templates.get(key)
        if template is None:
            spec = self.markets[symbol]
            template = self._templates[key] = Position(
                symbol=symbol,
                side=PositionSide.LONG,
                leverage=leverage if spec.is_derivative else 1.0,
                margin_mode=self.margin_mode,
                inverse=spec.is_inverse,
                contract_size=spec.contract_size,
                maintenance_margin_rate=spec.maintenance_margin_rate if spec.is_derivative else 0.0,
            )
        return template

    def apply_trade(self, trade: Trade, position_side: PositionSide | None) -> list[PositionChange]:
        """Book a fill: cash or wallet, fees, positions. Returns the position changes."""
        spec = self.markets[trade.symbol]
        account = self.account
        changes = self.ledger.apply_fill(
            trade.symbol,
            trade.side,
            trade.quantity,
            trade.price,
            trade.timestamp,
            position_side=position_side,
            template=self.template(trade.symbol),
        )
        realized = 0.0
        for change in changes:
            realized += change.realized_pnl
        if self._derivative[trade.symbol]:
            account.balance += realized - trade.fee
        else:
            value = trade.quantity * trade.price * spec.contract_size
            if trade.side is OrderSide.BUY:
                account.balance -= value + trade.fee
            else:
                account.balance += value - trade.fee
        for change in changes:
            change.position.fees += trade.fee * ((change.opened + change.closed) / trade.quantity)
        trade.realized_pnl = realized
        account.fees_paid += trade.fee
        self.realized_pnl += realized
        self.last_prices.setdefault(trade.symbol, trade.price)
        self.revalue()
        return changes

    def book_funding(self, amount: float) -> None:
        """Credit (``amount`` > 0) or debit a funding payment to the wallet (see ``engine.funding``)."""
        self.account.balance += amount
        self.funding += amount
        self.revalue()

    def charge(self, amount: float) -> None:
        """Debit the wallet (liquidation fee, funding)."""
        self.account.balance -= amount
        self.revalue()

    # ---------------------------------------------------------------- affordability
    def required_margin(self, spec: MarketSpec, quantity: float, price: float) -> float:
        """Settlement-currency amount an opening order of ``quantity`` locks (plus its taker fee)."""
        fee, _ = self.fee_for(spec, quantity, price, maker=False)
        if spec.is_derivative:
            leverage = self.leverage.get(spec.symbol, 1.0)
            if spec.is_inverse:
                return quantity * spec.contract_size / price / leverage + fee
            return quantity * price * spec.contract_size / leverage + fee
        return quantity * price * spec.contract_size + fee

    def available_for_orders(self) -> float:
        """What new opening orders may still use: free cash (spot) or free margin (futures)."""
        account = self.account
        if self._any_derivative:
            if self.margin_mode is MarginMode.CROSS:
                return account.equity - account.used_margin
            return account.balance - account.used_margin + min(account.unrealized_pnl, 0.0)
        return account.balance

    def snapshot_day(self) -> datetime:
        return datetime.fromtimestamp(self._now_ms / 1000, tz=UTC)
