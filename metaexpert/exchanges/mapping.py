"""Translate ccxt's unified structures into MetaExpert's core types.

Quantities stay in the venue's unit, ccxt's ``amount``: base units on spot, contracts on
derivatives, with ``MarketSpec.contract_size`` saying what one contract is worth (1 BTC
per contract on Binance and Bybit linear, 0.01 BTC on OKX ``BTC-USDT-SWAP``, 100 USD on
inverse). Core's notional and PnL arithmetic multiplies by ``contract_size``, so the two
agree on every venue.

ccxt reports an order as a snapshot (cumulative ``filled``, ``average``, ``fee``); the core
``Order`` is a state machine fed with individual fills. ``apply_order_snapshot`` bridges the
two: it walks the order through ``submitted`` and applies the *increment* since the last
snapshot as one fill, so repeated snapshots never double-count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from metaexpert.core.account import Account
from metaexpert.core.clock import now_ms
from metaexpert.core.enums import (
    ContractType,
    LiquidityRole,
    MarginMode,
    MarketType,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    TimeInForce,
)
from metaexpert.core.errors import DataError
from metaexpert.core.funding import FundingRate
from metaexpert.core.market import Bar, MarketSpec, OrderBook, Tick
from metaexpert.core.order import Order, Trade
from metaexpert.core.position import Position

_EPSILON = 1e-12


def _float(value: Any, default: float = 0.0) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(number) else number


def _step(value: Any, precision_mode: int) -> float:
    """ccxt precision is a tick size (TICK_SIZE mode) or a number of decimals."""
    if value is None:
        return 0.0
    number = float(value)
    from ccxt.base.decimal_to_precision import TICK_SIZE

    if precision_mode == TICK_SIZE:
        return number
    return 10.0 ** (-int(number))


def books_inverse(market: dict[str, Any]) -> bool:
    """Whether a ccxt market is booked as inverse (PnL in 1/price, contracts worth fixed USD).

    An option's premium is a price per unit of the underlying, in the settle coin (OKX BTC-USD
    options: BTC per BTC, 0.01 BTC a contract), so its PnL is linear in the premium (contracts x
    size x change) even where ccxt calls the market inverse. Booked as inverse, 0.01 read as USD
    per contract: fixed_base sizing was refused, and a restored position was valued at 0.0227
    BTC of PnL where the venue said 0.0002."""
    return bool(market.get("inverse")) and not market.get("option")


def market_spec_from_ccxt(
    market: dict[str, Any],
    user_symbol: str,
    *,
    precision_mode: int,
    default_max_leverage: float,
) -> MarketSpec:
    """Build the core ``MarketSpec`` from a loaded ccxt market."""
    if market.get("spot"):
        market_type, contract_type = MarketType.SPOT, None
    elif market.get("option"):
        market_type, contract_type = MarketType.OPTIONS, ContractType.LINEAR  # books_inverse
    else:
        market_type = MarketType.FUTURES
        contract_type = ContractType.INVERSE if books_inverse(market) else ContractType.LINEAR
    limits = market.get("limits") or {}
    amount_limits = limits.get("amount") or {}
    cost_limits = limits.get("cost") or {}
    leverage_limits = limits.get("leverage") or {}
    precision = market.get("precision") or {}
    max_leverage = _float(leverage_limits.get("max"), 0.0)
    if max_leverage <= 0:
        max_leverage = 1.0 if market_type is MarketType.SPOT else default_max_leverage
    max_amount = _float(amount_limits.get("max"), math.inf) or math.inf
    return MarketSpec(
        symbol=user_symbol,
        base=str(market.get("base") or ""),
        quote=str(market.get("quote") or ""),
        market_type=market_type,
        contract_type=contract_type,
        settle=market.get("settle"),
        contract_size=_float(market.get("contractSize"), 1.0) or 1.0,
        amount_step=_step(precision.get("amount"), precision_mode),
        price_step=_step(precision.get("price"), precision_mode),
        min_amount=_float(amount_limits.get("min")),
        max_amount=max_amount,
        min_notional=_float(cost_limits.get("min")),
        max_leverage=max_leverage,
        maker_fee=_float(market.get("maker"), 0.001),
        taker_fee=_float(market.get("taker"), 0.001),
    )


_CCXT_ORDER_TYPE = {
    OrderType.MARKET: "market",
    OrderType.LIMIT: "limit",
    OrderType.STOP_MARKET: "market",
    OrderType.STOP_LIMIT: "limit",
    OrderType.TAKE_PROFIT: "market",
    OrderType.TAKE_PROFIT_LIMIT: "limit",
    OrderType.TRAILING_STOP: "market",
}


def ccxt_order_arguments(order: Order) -> tuple[str, str, float, float | None, dict[str, Any]]:
    """(type, side, amount, price, unified params) for ``create_order``."""
    params: dict[str, Any] = {}
    if order.order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT):
        params["stopLossPrice"] = order.stop_price
    elif order.order_type in (OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT):
        params["takeProfitPrice"] = order.stop_price
    elif order.order_type is OrderType.TRAILING_STOP:
        # ccxt's unified trailing parameters (Binance USD-M/COIN-M: TRAILING_STOP_MARKET with
        # callbackRate; a venue without them answers NotSupported, a permanent error)
        percent = float(order.trailing_pct or 0.0)
        params["trailingPercent"] = (
            int(percent) if percent.is_integer() else percent
        )  # "5", not "5.0"
        if order.activation_price:
            params["trailingTriggerPrice"] = order.activation_price
    if order.order_type.has_limit_price:
        params["timeInForce"] = str(order.time_in_force)
        if order.time_in_force is TimeInForce.GTD and order.expire_at is not None:
            params["goodTillDate"] = order.expire_at
    price = order.price if order.order_type.has_limit_price else None
    return _CCXT_ORDER_TYPE[order.order_type], order.side.value, order.quantity, price, params


_STATUS = {
    "open": OrderStatus.SUBMITTED,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELLED,
    "cancelled": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED,
    "expired": OrderStatus.EXPIRED,
}


def apply_order_snapshot(order: Order, snapshot: dict[str, Any]) -> Order:
    """Bring ``order`` up to date with a ccxt order snapshot; returns the same object."""
    timestamp = int(snapshot.get("lastUpdateTimestamp") or snapshot.get("timestamp") or now_ms())
    exchange_id = snapshot.get("id")
    if exchange_id:
        order.order_id = str(exchange_id)
    if order.is_terminal:
        return order
    status = _STATUS.get(str(snapshot.get("status") or "open").lower(), OrderStatus.SUBMITTED)
    if order.status is OrderStatus.CREATED:
        if status is OrderStatus.REJECTED:
            info = snapshot.get("info")
            reason = str(info.get("msg")) if isinstance(info, dict) and info.get("msg") else ""
            order.reject(reason or "rejected by the exchange", timestamp)
            return order
        order.submit(timestamp)
    filled = _float(snapshot.get("filled"))
    increment = filled - order.filled_quantity
    if increment > max(_EPSILON, order.quantity * 1e-9):
        average = (
            _float(snapshot.get("average")) or _float(snapshot.get("price")) or order.price or 0.0
        )
        previous_value = order.average_price * order.filled_quantity
        fill_price = (average * filled - previous_value) / increment if average else 0.0
        if fill_price <= 0:
            fill_price = average
        fee = snapshot.get("fee") or {}
        total_fee = _float(fee.get("cost")) if isinstance(fee, dict) else 0.0
        fill_fee = max(total_fee - order.fee, 0.0)
        increment = min(increment, order.remaining_quantity)
        if increment > 0:
            order.apply_fill(
                increment,
                fill_price,
                fill_fee,
                str(fee.get("currency") or "") if isinstance(fee, dict) else "",
                timestamp,
                liquidity=LiquidityRole.TAKER,
            )
    if order.is_terminal:
        return order
    if status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED):
        if order.can_transition(status):
            order.transition(status, timestamp)
        elif order.can_transition(OrderStatus.CANCELLED):
            order.transition(OrderStatus.CANCELLED, timestamp)
    elif status is OrderStatus.FILLED and not order.is_terminal and order.filled_quantity > 0:
        # ccxt says closed but the fill arithmetic left a rounding remainder: complete it.
        remaining = order.remaining_quantity
        if remaining > 0:
            order.apply_fill(remaining, order.average_price, 0.0, order.fee_currency, timestamp)
    return order


def order_from_snapshot(snapshot: dict[str, Any], user_symbol: str) -> Order:
    """A new core ``Order`` for a venue order we did not create in this process."""
    order_type, stop = _order_type_from_ccxt(snapshot)
    amount = _float(snapshot.get("amount"))
    if amount <= 0:
        raise DataError(f"order {snapshot.get('id')} from the exchange has no amount")
    price = _float(snapshot.get("price")) or None
    if order_type.has_limit_price and price is None:
        order_type = OrderType.MARKET if not order_type.is_conditional else OrderType.STOP_MARKET
    order = Order(
        symbol=user_symbol,
        side=OrderSide(str(snapshot.get("side") or "buy").lower()),
        order_type=order_type,
        quantity=amount,
        price=price if order_type.has_limit_price else None,
        stop_price=stop if order_type.is_conditional else None,
        reduce_only=bool(snapshot.get("reduceOnly")),
        client_order_id=str(snapshot.get("clientOrderId") or f"venue-{snapshot.get('id')}"),
        order_id=str(snapshot.get("id") or ""),
        created_at=int(snapshot.get("timestamp") or 0),
    )
    position_side = _position_side_of(snapshot)
    if position_side is not None:
        order.position_side = position_side
    return apply_order_snapshot(order, snapshot)


_LIMIT_KINDS = frozenset(
    {
        "limit",
        "limit_maker",
        "stop",
        "stop_limit",
        "stop_loss_limit",
        "take_profit",
        "take_profit_limit",
    }
)
_CONDITIONAL_KINDS = frozenset(
    {"conditional", "trigger", "oco", "stop_loss", "take_profit_market", "stop_market"}
)


def _order_type_from_ccxt(snapshot: dict[str, Any]) -> tuple[OrderType, float | None]:
    """The core order type and trigger price of a ccxt snapshot.

    ccxt puts a conditional order's trigger in ``triggerPrice`` (Binance STOP_MARKET, Bybit
    conditional orders) or, for OKX algo orders (type ``conditional``), only in
    ``stopLossPrice`` / ``takeProfitPrice``. A plain limit or market order whose
    ``stopLossPrice`` is set carries an *attached* stop and is not itself conditional.
    """
    kind = str(snapshot.get("type") or "market").lower()
    trigger = _float(snapshot.get("triggerPrice")) or _float(snapshot.get("stopPrice"))
    loss = _float(snapshot.get("stopLossPrice"))
    profit = _float(snapshot.get("takeProfitPrice"))
    # ccxt names a Bybit conditional exit a target by ``takeProfitPrice`` equal to its trigger.
    take_profit = (
        "take_profit" in kind
        or "takeprofit" in kind
        or (profit > 0 and not loss and (not trigger or trigger == profit))
    )
    conditional = (
        bool(trigger)
        or "stop" in kind
        or "take_profit" in kind
        or (kind in _CONDITIONAL_KINDS and (loss > 0 or profit > 0))
    )
    limit = kind in _LIMIT_KINDS or (
        kind not in {"market", *_CONDITIONAL_KINDS} and "limit" in kind
    )
    if conditional and kind in _CONDITIONAL_KINDS and kind != "take_profit_market":
        limit = _float(snapshot.get("price")) > 0
    if not conditional:
        return (OrderType.LIMIT if limit else OrderType.MARKET), None
    stop = (profit if take_profit else loss) or trigger or None
    if stop is None:
        return (OrderType.LIMIT if limit else OrderType.MARKET), None
    if take_profit:
        return (OrderType.TAKE_PROFIT_LIMIT if limit else OrderType.TAKE_PROFIT), stop
    return (OrderType.STOP_LIMIT if limit else OrderType.STOP_MARKET), stop


def _position_side_of(snapshot: dict[str, Any]) -> PositionSide | None:
    info = snapshot.get("info") or {}
    raw = None
    if isinstance(info, dict):
        raw = info.get("positionSide") or info.get("posSide")
        if raw is None and info.get("positionIdx") in (1, 2, "1", "2"):
            raw = "long" if str(info.get("positionIdx")) == "1" else "short"
    if raw and str(raw).lower() in {"long", "short"}:
        return PositionSide(str(raw).lower())
    return None


def bar_from_ccxt(row: list[Any], symbol: str, timeframe: str) -> Bar:
    timestamp, open_, high, low, close, volume = row[:6]
    return Bar(
        symbol,
        timeframe,
        int(timestamp),
        float(open_),
        float(high),
        float(low),
        float(close),
        float(volume or 0.0),
    )


def tick_from_ticker(ticker: dict[str, Any], symbol: str) -> Tick:
    price = _float(ticker.get("last")) or _float(ticker.get("close"))
    bid = ticker.get("bid")
    ask = ticker.get("ask")
    if not price and bid is not None and ask is not None:
        price = (float(bid) + float(ask)) / 2
    return Tick(
        symbol=symbol,
        timestamp=int(ticker.get("timestamp") or now_ms()),
        price=price,
        quantity=_float(ticker.get("baseVolume")),
        bid=float(bid) if bid is not None else None,
        ask=float(ask) if ask is not None else None,
        mark_price=_float(ticker.get("markPrice")) or None,
    )


def tick_from_trade(trade: dict[str, Any], symbol: str) -> Tick:
    taker_side = str(trade.get("side") or "")
    return Tick(
        symbol=symbol,
        timestamp=int(trade.get("timestamp") or now_ms()),
        price=_float(trade.get("price")),
        quantity=_float(trade.get("amount")),
        is_buyer_maker=(taker_side == "sell") if taker_side else None,
    )


def funding_rate_from_ccxt(raw: dict[str, Any], symbol: str, *, history: bool) -> FundingRate:
    """A ccxt funding-rate structure (``history``: a ``fetchFundingRateHistory`` row, whose
    ``timestamp`` is the funding time; else ``fetchFundingRate``, whose ``fundingTimestamp``
    is the coming funding time) as a core ``FundingRate``. The mark price comes from ccxt's
    field, else the venue's own (Binance history rows carry ``markPrice`` only in ``info``)."""
    info = raw.get("info") or {}
    rate = raw.get("fundingRate")
    stamp = raw.get("timestamp") if history else raw.get("fundingTimestamp")
    if rate is None or stamp is None:
        raise DataError(f"funding rate of {symbol} without a rate or a funding time: {raw!r}")
    mark = raw.get("markPrice") or (info.get("markPrice") if isinstance(info, dict) else None)
    return FundingRate(
        symbol=symbol,
        funding_time=int(stamp),
        rate=float(rate),
        mark_price=_float(mark),
        timestamp=int(raw.get("timestamp") or 0),
    )


def order_book_from_ccxt(
    book: dict[str, Any], symbol: str, *, depth: int | None = None
) -> OrderBook:
    """A ccxt order book as a core ``OrderBook``, cut to ``depth`` levels a side when given."""
    bids = (book.get("bids") or [])[:depth]
    asks = (book.get("asks") or [])[:depth]
    return OrderBook(
        symbol=symbol,
        timestamp=int(book.get("timestamp") or now_ms()),
        bids=[(float(level[0]), float(level[1])) for level in bids],
        asks=[(float(level[0]), float(level[1])) for level in asks],
        sequence=book.get("nonce"),
    )


def market_contract_size(market: dict[str, Any]) -> float:
    return _float(market.get("contractSize"), 1.0) or 1.0


def position_from_ccxt(
    raw: dict[str, Any],
    user_symbol: str,
    *,
    inverse: bool | None = None,
    contract_size: float | None = None,
) -> Position | None:
    """A core ``Position`` from a ccxt position, or None for a flat leg.

    ccxt's position structure does not say whether the contract is inverse; the caller
    passes it from the market (``inverse``), and the market's contract size where the
    position has none. An inverse position read as linear turns a 0.0000432 BTC PnL into
    203,040 (3 contracts x 100 USD x a 676.8 price move).
    """
    contracts = _float(raw.get("contracts"))
    if contracts <= _EPSILON:
        return None
    side_text = str(raw.get("side") or "").lower()
    if side_text not in {"long", "short"}:
        return None
    if inverse is None:
        inverse = raw.get("linear") is False or raw.get("inverse") is True
    size = _float(raw.get("contractSize")) or contract_size or 1.0
    margin_text = str(raw.get("marginMode") or "isolated").lower()
    return Position(
        symbol=user_symbol,
        side=PositionSide(side_text),
        quantity=contracts,
        entry_price=_float(raw.get("entryPrice")),
        leverage=_float(raw.get("leverage"), 1.0) or 1.0,
        margin_mode=MarginMode.CROSS if margin_text == "cross" else MarginMode.ISOLATED,
        inverse=inverse,
        contract_size=size,
        maintenance_margin_rate=_float(raw.get("maintenanceMarginPercentage"), 0.005) or 0.005,
        mark_price=_float(raw.get("markPrice")),
        updated_at=int(raw.get("timestamp") or now_ms()),
    )


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """One currency's account as the venue states it (see each venue module's ``account_figures``)."""

    balance: float  # wallet: deposits + realised PnL - fees
    equity: float  # balance + unrealised PnL, as the venue computes it
    unrealized_pnl: float
    used_margin: float | None = None


def account_from_balance(
    balance: dict[str, Any], currency: str, figures: AccountFigures | None = None
) -> Account:
    """The core ``Account`` of ``currency``: the venue's own figures when given, else ccxt's total.

    ccxt's ``total`` means different things per venue (Binance futures: margin balance,
    unrealised PnL included; Bybit unified: wallet balance, without it), so equity is never
    derived from it by adding a PnL field: each venue module reads its own fields.
    """
    total = balance.get("total") or {}
    used = balance.get("used") or {}
    timestamp = int(balance.get("timestamp") or now_ms())
    if figures is None:
        wallet = _float(total.get(currency))
        return Account(
            currency=currency,
            balance=wallet,
            equity=wallet,
            used_margin=_float(used.get(currency)),
            unrealized_pnl=0.0,
            timestamp=timestamp,
        )
    used_margin = (
        figures.used_margin if figures.used_margin is not None else _float(used.get(currency))
    )
    account = Account(
        currency=currency,
        balance=figures.balance,
        equity=figures.equity,
        used_margin=used_margin,
        unrealized_pnl=figures.unrealized_pnl,
        timestamp=timestamp,
    )
    account.equity = (
        figures.equity
    )  # Account treats a zero equity as "same as balance"; keep the venue's
    return account


def trade_from_ccxt(raw: dict[str, Any], user_symbol: str) -> Trade:
    """A core ``Trade`` (one fill) from a ccxt trade of ``fetch_my_trades`` / ``watch_my_trades``."""
    fee = raw.get("fee") or {}
    cost = _float(fee.get("cost")) if isinstance(fee, dict) else 0.0
    currency = str(fee.get("currency") or "") if isinstance(fee, dict) else ""
    role = str(raw.get("takerOrMaker") or "taker").lower()
    side = str(raw.get("side") or "").lower()
    if side not in {"buy", "sell"}:
        raise DataError(f"trade {raw.get('id')} from the exchange has no side")
    return Trade(
        trade_id=str(raw.get("id") or ""),
        order_id=str(raw.get("order") or ""),
        client_order_id=str((raw.get("info") or {}).get("clientOrderId") or ""),
        symbol=user_symbol,
        side=OrderSide(side),
        quantity=_float(raw.get("amount")),
        price=_float(raw.get("price")),
        fee=cost,
        fee_currency=currency,
        timestamp=int(raw.get("timestamp") or 0),
        liquidity=LiquidityRole.MAKER if role == "maker" else LiquidityRole.TAKER,
        position_side=_position_side_of(raw),
    )
