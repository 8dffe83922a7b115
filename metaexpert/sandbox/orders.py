"""Orders, fills, balances and positions as the sandbox exchange keeps them, in Binance terms.

Why not the engine's domain objects: the sandbox plays the *exchange*, so it must reproduce the
exchange's own vocabulary and quirks (spot ``cummulativeQuoteQty``, futures ``positionSide``,
algo orders) to the letter; translating to and from MetaExpert's domain is the gateway's job,
and the sandbox is what tests that translation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

SPOT = "spot"
USDM = "usdm"

LIMIT_TYPES = {
    "LIMIT",
    "LIMIT_MAKER",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT_LIMIT",
    "STOP",
    "TAKE_PROFIT",
}
SPOT_TYPES = {
    "LIMIT",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
    "LIMIT_MAKER",
}
FUTURES_PLAIN_TYPES = {"LIMIT", "MARKET"}
FUTURES_ALGO_TYPES = {"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"}
STOP_TYPES = {"STOP_LOSS", "STOP_LOSS_LIMIT", "STOP", "STOP_MARKET"}
TAKE_PROFIT_TYPES = {"TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "TAKE_PROFIT_MARKET"}
OPEN_STATUSES = {"NEW", "PARTIALLY_FILLED"}


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

    def to_spot(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "price": fmt(self.price),
            "qty": fmt(self.quantity),
            "quoteQty": fmt(self.quote_quantity),
            "commission": fmt(self.commission),
            "commissionAsset": self.commission_asset,
            "time": self.time,
            "isBuyer": self.side == "BUY",
            "isMaker": self.is_maker,
            "isBestMatch": True,
        }

    def to_futures(self) -> dict[str, object]:
        return {
            "buyer": self.side == "BUY",
            "commission": fmt(self.commission),
            "commissionAsset": self.commission_asset,
            "id": self.trade_id,
            "maker": self.is_maker,
            "orderId": self.order_id,
            "price": fmt(self.price),
            "qty": fmt(self.quantity),
            "quoteQty": fmt(self.quote_quantity),
            "realizedPnl": fmt(self.realized_pnl),
            "side": self.side,
            "positionSide": self.position_side,
            "symbol": self.symbol,
            "time": self.time,
        }

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
    """An order on the sandbox exchange, spot or USD-M, plain or algo (conditional)."""

    market: str
    api_key: str
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
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
    fills: list[Fill] = field(default_factory=list)

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
        return self.type in STOP_TYPES or self.type in TAKE_PROFIT_TYPES

    def to_spot(self) -> dict[str, object]:
        working = self.time if (not self.is_conditional or self.triggered) else -1
        result: dict[str, object] = {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": fmt(self.price),
            "origQty": fmt(self.quantity),
            "executedQty": fmt(self.executed_quantity),
            "cummulativeQuoteQty": fmt(self.cumulative_quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "stopPrice": fmt(self.stop_price),
            "icebergQty": "0",
            "time": self.time,
            "updateTime": self.update_time or self.time,
            "isWorking": working != -1,
            "workingTime": working,
            "origQuoteOrderQty": fmt(self.quote_order_quantity),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        return result

    def to_spot_ack(self) -> dict[str, object]:
        """The ``newOrderRespType=FULL`` answer to a new spot order."""
        result = self.to_spot()
        for key in ("time", "updateTime", "isWorking", "icebergQty"):
            result.pop(key)
        result["transactTime"] = self.time
        result["fills"] = [
            {
                "price": fmt(fill.price),
                "qty": fmt(fill.quantity),
                "commission": fmt(fill.commission),
                "commissionAsset": fill.commission_asset,
                "tradeId": fill.trade_id,
            }
            for fill in self.fills
        ]
        if not self.is_conditional:
            result.pop("stopPrice")
        return result

    def to_futures(self) -> dict[str, object]:
        return {
            "orderId": self.order_id,
            "symbol": self.symbol,
            "status": self.status,
            "clientOrderId": self.client_order_id,
            "price": fmt(self.price),
            "avgPrice": fmt(self.average_price),
            "origQty": fmt(self.quantity),
            "executedQty": fmt(self.executed_quantity),
            "cumQty": fmt(self.executed_quantity),
            "cumQuote": fmt(self.cumulative_quote),
            "timeInForce": self.time_in_force,
            "type": self.type,
            "reduceOnly": self.reduce_only,
            "closePosition": self.close_position,
            "side": self.side,
            "positionSide": self.position_side,
            "stopPrice": fmt(self.stop_price),
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": self.type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "time": self.time,
            "updateTime": self.update_time or self.time,
        }

    def to_algo(self) -> dict[str, object]:
        return {
            "algoId": self.order_id,
            "clientAlgoId": self.client_order_id,
            "algoType": "CONDITIONAL",
            "orderType": self.type,
            "symbol": self.symbol,
            "side": self.side,
            "positionSide": self.position_side,
            "timeInForce": self.time_in_force,
            "quantity": fmt(self.quantity),
            "algoStatus": self.algo_status,
            "actualOrderId": "" if self.actual_order_id is None else str(self.actual_order_id),
            "triggerPrice": fmt(self.stop_price),
            "price": fmt(self.price),
            "icebergQuantity": None,
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "workingType": "CONTRACT_PRICE",
            "priceMatch": "NONE",
            "closePosition": self.close_position,
            "priceProtect": False,
            "reduceOnly": self.reduce_only,
            "createTime": self.time,
            "updateTime": self.update_time or self.time,
            "triggerTime": self.update_time if self.triggered else 0,
            "goodTillDate": 0,
        }

    def to_ledger(self) -> dict[str, object]:
        return {
            "market": self.market,
            "api_key": self.api_key,
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "type": self.type,
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
    """A USD-M position: signed amount for BOTH, positive amounts for LONG and SHORT legs."""

    symbol: str
    position_side: str
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
    """USD-M wallet, settings (leverage, margin type, position mode) and positions of one key."""

    api_key: str
    wallet: dict[str, float]
    dual_side: bool = False
    leverage: dict[str, int] = field(default_factory=dict)
    margin_type: dict[str, str] = field(default_factory=dict)
    positions: dict[tuple[str, str], FuturesPosition] = field(default_factory=dict)

    def position(self, symbol: str, position_side: str) -> FuturesPosition:
        key = (symbol, position_side)
        if key not in self.positions:
            self.positions[key] = FuturesPosition(symbol=symbol, position_side=position_side)
        return self.positions[key]

    def open_positions(self) -> list[FuturesPosition]:
        return [position for position in self.positions.values() if position.amount != 0.0]
