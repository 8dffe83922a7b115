"""Orders, fills, balances, positions and markets as the sandbox's matching core keeps them.

Why not the engine's domain objects: the sandbox plays the *exchange*; it keeps what a venue
keeps (locked balances, position legs, conditional orders held by a separate service) in a
vocabulary no venue owns. Each venue package translates its own wire names into these
(``venues/<venue>/orders.py``) and renders them back in its own payload shapes; translating
to and from MetaExpert's domain is the gateway's job, and the sandbox is what tests it.

The string values of the enums are the ones the ledger has always reported (``"usdm"`` is the
Binance venue's name for its linear market, chosen by the venue, not by the core).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from metaexpert.sandbox.config import SymbolConfig


class MarketKind(StrEnum):
    """What a market trades: spot balances, or linear / inverse contracts with positions."""

    SPOT = "spot"
    LINEAR = "linear"
    INVERSE = "inverse"
    OPTION = "option"  # premiums priced from the underlying (core/options.py), booked like linear


class OrderKind(StrEnum):
    """Order behaviour in the core; each venue maps its own type names onto these."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP_MARKET = "STOP_MARKET"
    STOP_LIMIT = "STOP_LIMIT"
    TAKE_PROFIT_MARKET = "TAKE_PROFIT_MARKET"
    TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"
    TRAILING_STOP_MARKET = "TRAILING_STOP_MARKET"


class OrderStatus(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    FINISHED = "FINISHED"  # a conditional order that handed over to the order it triggered


STOP_KINDS = frozenset(
    {OrderKind.STOP_MARKET, OrderKind.STOP_LIMIT, OrderKind.TRAILING_STOP_MARKET}
)
TAKE_PROFIT_KINDS = frozenset({OrderKind.TAKE_PROFIT_MARKET, OrderKind.TAKE_PROFIT_LIMIT})
CONDITIONAL_KINDS = STOP_KINDS | TAKE_PROFIT_KINDS
PRICED_KINDS = frozenset({OrderKind.LIMIT, OrderKind.STOP_LIMIT, OrderKind.TAKE_PROFIT_LIMIT})
MARKET_FILL_KINDS = frozenset(
    {
        OrderKind.MARKET,
        OrderKind.STOP_MARKET,
        OrderKind.TAKE_PROFIT_MARKET,
        OrderKind.TRAILING_STOP_MARKET,
    }
)
OPEN_STATUSES = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One market a venue serves: its name (the venue's choice), kind, symbols and rules.

    ``data_market`` names the recordings directory whose tick data it replays (``spot`` or
    ``usdm`` under ``<data_dir>/binance``); ``contract_size`` is per symbol (inverse: the USD
    value of one contract, e.g. 100 for BTCUSD; linear: the base coin per contract, 1 unless
    the venue counts contracts); ``candles`` names the recorded candle symbol a market symbol
    replays when they differ (``BTCUSD_PERP`` -> ``BTCUSDT``, ``BTC-USDT`` -> ``BTCUSDT``).
    """

    name: str
    kind: MarketKind
    rules: dict[str, SymbolConfig]
    maker_fee: float
    taker_fee: float
    data_market: str = "spot"
    contract_size: dict[str, float] = field(default_factory=dict)
    candles: dict[str, str] = field(default_factory=dict)  # symbol -> candle symbol (or itself)
    options: dict[str, object] = field(default_factory=dict)  # symbol -> core.options.OptionSpec

    @property
    def is_derivative(self) -> bool:
        return self.kind is not MarketKind.SPOT


@dataclass(slots=True)
class OrderRequest:
    """A new order as a venue parsed it from its wire format; the core validates and books it.

    ``quantity`` is ``None`` only for close-position orders; ``venue_type`` is the venue's own
    type name, echoed back in its payloads and in the ledger.
    """

    market: str
    api_key: str
    symbol: str
    side: str
    kind: OrderKind
    venue_type: str
    quantity: Decimal | None
    price: Decimal | None = None
    stop_price: float = 0.0
    time_in_force: str = "GTC"
    client_order_id: str | None = None
    position_side: str = "BOTH"
    reduce_only: bool = False
    close_position: bool = False
    post_only: bool = False
    quote_quantity: float = 0.0
    algo: bool = False
    callback_rate: float = 0.0  # trailing stops: percent of the best price since placement
    activation_price: float = 0.0


def fmt(value: float, places: int = 8) -> str:
    """A decimal string without float noise, as Binance sends numbers."""
    text = format(Decimal(repr(round(value, places))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@dataclass(slots=True)
class Fill:
    """One execution of an order (Binance ``myTrades``/``userTrades`` row)."""

    market: str
    api_key: str
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: float
    quantity: float
    commission: float
    commission_asset: str
    time: int
    is_maker: bool
    realized_pnl: float = 0.0
    position_side: str = "BOTH"

    @property
    def quote_quantity(self) -> float:
        return self.price * self.quantity

    def to_ledger(self) -> dict[str, object]:
        return {
            "market": self.market,
            "api_key": self.api_key,
            "trade_id": self.trade_id,
            "order_id": self.order_id,
            "symbol": self.symbol,
            "side": self.side,
            "price": self.price,
            "quantity": self.quantity,
            "commission": self.commission,
            "commission_asset": self.commission_asset,
            "time": self.time,
            "is_maker": self.is_maker,
            "realized_pnl": self.realized_pnl,
            "position_side": self.position_side,
        }


@dataclass(slots=True)
class SandboxOrder:
    """An order on the sandbox exchange: spot or derivative, plain or algo (a conditional order
    held by the venue's separate conditional-order service until it triggers).

    ``type`` is the venue's own name (echoed in its payloads), ``kind`` what the core does with it.
    """

    market: str
    api_key: str
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    kind: OrderKind
    quantity: float
    price: float
    stop_price: float
    time_in_force: str
    time: int
    position_side: str = "BOTH"
    reduce_only: bool = False
    close_position: bool = False
    quote_order_quantity: float = 0.0
    status: str = "NEW"
    executed_quantity: float = 0.0
    cumulative_quote: float = 0.0
    update_time: int = 0
    triggered: bool = False
    is_algo: bool = False
    algo_status: str = "NEW"
    actual_order_id: int | None = None
    locked_asset: str | None = None
    locked_amount: float = 0.0
    post_only: bool = False
    callback_rate: float = 0.0
    activation_price: float = 0.0
    extreme_price: float = 0.0  # trailing stops: best price seen since activation
    fills: list[Fill] = field(default_factory=list)

    @property
    def remaining(self) -> float:
        return max(self.quantity - self.executed_quantity, 0.0)

    @property
    def is_open(self) -> bool:
        if self.is_algo:
            return self.algo_status == "NEW"
        return self.status in OPEN_STATUSES

    @property
    def average_price(self) -> float:
        return self.cumulative_quote / self.executed_quantity if self.executed_quantity else 0.0

    @property
    def is_conditional(self) -> bool:
        return self.kind in CONDITIONAL_KINDS

    @property
    def is_stop(self) -> bool:
        return self.kind in STOP_KINDS

    def to_ledger(self) -> dict[str, object]:
        return {
            "market": self.market,
            "api_key": self.api_key,
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "type": self.type,
            "kind": str(self.kind),
            "quantity": self.quantity,
            "price": self.price,
            "stop_price": self.stop_price,
            "time_in_force": self.time_in_force,
            "status": self.algo_status if self.is_algo else self.status,
            "executed_quantity": self.executed_quantity,
            "average_price": self.average_price,
            "position_side": self.position_side,
            "reduce_only": self.reduce_only,
            "is_algo": self.is_algo,
            "actual_order_id": self.actual_order_id,
            "time": self.time,
            "update_time": self.update_time,
        }


@dataclass(slots=True)
class SpotAccount:
    """Spot balances (free and locked per asset) of one API key."""

    api_key: str
    free: dict[str, float]
    locked: dict[str, float] = field(default_factory=dict)

    def available(self, asset: str) -> float:
        return self.free.get(asset, 0.0)

    def lock(self, asset: str, amount: float) -> None:
        self.free[asset] = self.free.get(asset, 0.0) - amount
        self.locked[asset] = self.locked.get(asset, 0.0) + amount

    def unlock(self, asset: str, amount: float) -> None:
        self.locked[asset] = self.locked.get(asset, 0.0) - amount
        self.free[asset] = self.free.get(asset, 0.0) + amount

    def credit(self, asset: str, amount: float) -> None:
        self.free[asset] = self.free.get(asset, 0.0) + amount

    def balances(self) -> list[dict[str, str]]:
        assets = sorted(set(self.free) | set(self.locked))
        return [
            {
                "asset": asset,
                "free": fmt(self.free.get(asset, 0.0)),
                "locked": fmt(self.locked.get(asset, 0.0)),
            }
            for asset in assets
        ]


@dataclass(slots=True)
class FuturesPosition:
    """A derivative position: signed amount for BOTH, positive amounts for LONG and SHORT legs
    (contracts for inverse markets)."""

    symbol: str
    position_side: str
    market: str = ""
    amount: float = 0.0
    entry_price: float = 0.0
    realized_pnl: float = 0.0
    update_time: int = 0

    @property
    def signed_amount(self) -> float:
        """Positive for long exposure, negative for short, whatever the position side."""
        if self.position_side == "SHORT":
            return -abs(self.amount)
        return self.amount


@dataclass(slots=True)
class FuturesAccount:
    """Wallet per coin, settings (leverage, margin type, position mode) and positions of one key
    in one derivative market."""

    api_key: str
    wallet: dict[str, float]
    market: str = ""
    unified: bool = False  # the wallet is the account's spot balances (a unified account)
    dual_side: bool = False
    leverage: dict[str, int] = field(default_factory=dict)
    margin_type: dict[str, str] = field(default_factory=dict)
    positions: dict[tuple[str, str], FuturesPosition] = field(default_factory=dict)

    def position(self, symbol: str, position_side: str) -> FuturesPosition:
        key = (symbol, position_side)
        if key not in self.positions:
            self.positions[key] = FuturesPosition(
                symbol=symbol, position_side=position_side, market=self.market
            )
        return self.positions[key]

    def open_positions(self) -> list[FuturesPosition]:
        return [position for position in self.positions.values() if position.amount != 0.0]
