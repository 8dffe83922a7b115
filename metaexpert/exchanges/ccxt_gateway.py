"""``CcxtGateway``: the exchange gateway over ccxt's async REST and ccxt.pro websockets.

Every request goes through the same path: the priority rate limiter (orders first), the
exchange's circuit breaker, the ccxt call, and on failure ``translate_error`` (classified,
cause named, secrets scrubbed). Reads are retried with backoff; order submission has its
own loop because a failed submission may have succeeded: before resubmitting, the order
is looked up by its client order id. When the venue stays down the operation goes to the
durable ``OrderQueue`` and ``replay_queue`` sends it later, with the same guarantee.

The class is split by concern: the queue replay lives in ``replay.py``, the websocket streams
in ``gateway_streams.py`` (mixins of ``CcxtGateway``); this module keeps the request path,
reference and market data, the account, the venue's answers and the orders.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import ccxt
import ccxt.pro

from metaexpert.core.account import Account
from metaexpert.core.clock import now_ms
from metaexpert.core.enums import (
    ContractType,
    Exchange,
    MarginMode,
    MarketType,
    OrderStatus,
    OrderType,
    PositionSide,
)
from metaexpert.core.errors import (
    ConfigurationError,
    MetaExpertError,
    PermanentError,
    RecoverableError,
)
from metaexpert.core.funding import FundingRate
from metaexpert.core.market import Bar, MarketSpec, OrderBook, Tick
from metaexpert.core.order import Order, Trade
from metaexpert.core.position import Position
from metaexpert.exchanges import mapping
from metaexpert.exchanges.circuit import (
    CircuitBreaker,
    CircuitBreakers,
    EndpointGroup,
    StateChangeCallback,
)
from metaexpert.exchanges.config import ExchangeConfig
from metaexpert.exchanges.errors import (
    CircuitOpenError,
    ErrorClass,
    ExchangeOrderRejectedError,
    ExchangePermanentError,
    OrderNotFoundError,
    OrderOutcomeUnknownError,
    OrderQueuedError,
    RequestShed,
    UnknownSymbolError,
    classify_error,
    translate_error,
)
from metaexpert.exchanges.gateway import ExchangeGateway
from metaexpert.exchanges.gateway_streams import StreamingMixin
from metaexpert.exchanges.modify import ModifyMixin
from metaexpert.exchanges.order_queue import (
    OperationKind,
    OrderQueue,
    order_to_payload,
)
from metaexpert.exchanges.rate_limit import PriorityRateLimiter, RequestPriority
from metaexpert.exchanges.redaction import RedactingFilter, redact, register_secrets
from metaexpert.exchanges.replay import QueueReplayMixin
from metaexpert.exchanges.retry import RetryPolicy, parse_retry_after, retrying
from metaexpert.exchanges.streams import StreamStateChange, StreamSupervisor
from metaexpert.exchanges.venues import venue_for

T = TypeVar("T")
_logger = logging.getLogger(__name__)
_redacting_filter = RedactingFilter()
_TRACKED_ORDERS_LIMIT = 5_000


# ------------------------------------------------------------------ ccxt subclass
class _RetryAfterMixin:
    """Attach the venue's ``Retry-After`` (seconds) to the ccxt exception it raises.

    ``handle_errors`` is ccxt's documented per-exchange hook; the generic HTTP status
    check that ccxt runs after it is run here too, so 429/5xx errors carry the header.
    """

    def handle_errors(self, *args: Any) -> Any:
        code, reason, url, method, headers, body = args[:6]
        try:
            result = super().handle_errors(*args)  # type: ignore[misc]
            if isinstance(code, int) and code >= 400:
                self.handle_http_status_code(code, reason, url, method, body)  # type: ignore[attr-defined]
        except ccxt.BaseError as exc:
            exc.retry_after_seconds = parse_retry_after(headers)  # type: ignore[attr-defined]
            raise
        return result


_CLASS_CACHE: dict[str, type] = {}


def _client_class(name: str) -> type:
    if name not in _CLASS_CACHE:
        base = getattr(ccxt.pro, name, None)
        if base is None:
            raise ConfigurationError(f"ccxt.pro has no exchange class {name!r}")
        _CLASS_CACHE[name] = type(f"MetaExpert_{name}", (_RetryAfterMixin, base), {})
    return _CLASS_CACHE[name]


def _install_redaction(client: Any) -> None:
    """Scrub ccxt's own debug logging (it dumps request headers with the API key).

    A logger's filters only see records logged to that very logger, so the filter goes on
    the client's logger and on every ``ccxt.*`` logger that exists.
    """
    loggers = [getattr(client, "logger", None)]
    loggers += [
        logging.getLogger(name)
        for name in list(logging.root.manager.loggerDict)
        if name.startswith("ccxt")
    ]
    for logger in loggers:
        if isinstance(logger, logging.Logger) and _redacting_filter not in logger.filters:
            logger.addFilter(_redacting_filter)


_GROUP_OF = {
    RequestPriority.ORDER: EndpointGroup.ORDERS,
    RequestPriority.CANCEL: EndpointGroup.ORDERS,
    RequestPriority.ACCOUNT: EndpointGroup.ACCOUNT,
    RequestPriority.MARKET_DATA: EndpointGroup.MARKET_DATA,
}


_ADOPTION_CLOCK_SKEW_MS = 60_000


def _same_order(order: Order, snapshot: dict[str, Any], market_symbol: str) -> bool:
    """Whether the venue's order found under ``order``'s client id is ``order`` itself.

    Side, symbol and amount must agree, and the venue must have created it after this run
    created ``order`` (a minute of clock skew allowed): a client id reused by another run
    fails at least one of these.
    """
    side = str(snapshot.get("side") or "").lower()
    if side and side != order.side.value:
        return False
    symbol = snapshot.get("symbol")
    if symbol and symbol != market_symbol:
        return False
    amount = snapshot.get("amount")
    if (
        amount is not None
        and order.quantity > 0
        and abs(float(amount) - order.quantity) > order.quantity * 1e-6
    ):
        return False
    created = snapshot.get("timestamp")
    return not (
        created and order.created_at and int(created) < order.created_at - _ADOPTION_CLOCK_SKEW_MS
    )


def _not_shed_or_open(exc: BaseException) -> bool:
    return not isinstance(exc, (RequestShed, CircuitOpenError))


class CcxtGateway(ModifyMixin, QueueReplayMixin, StreamingMixin, ExchangeGateway):
    """The gateway for one exchange account and market type.

    ``order_queue_path``: SQLite journal for order operations that could not be sent (default:
    ``config.order_queue_path``; None disables the queue: such failures are raised instead).
    """

    def __init__(
        self,
        config: ExchangeConfig,
        *,
        retry_policy: RetryPolicy | None = None,
        order_retry_policy: RetryPolicy | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        on_circuit_state_change: StateChangeCallback | None = None,
        rate_limiter: PriorityRateLimiter | None = None,
        on_rate_limit_wait: Callable[[float], None] | None = None,
        order_queue_path: str | Path | None = None,
        on_stream_state_change: Callable[[StreamStateChange], Any] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.venue = venue_for(config.exchange)
        register_secrets(config.secret_values())
        self.retry_policy = retry_policy or RetryPolicy()
        self.order_retry_policy = order_retry_policy or self.retry_policy
        self.circuits = CircuitBreakers(
            str(config.exchange), circuit_breaker, on_state_change=on_circuit_state_change
        )
        self.rate_limiter = rate_limiter or PriorityRateLimiter(config.rate_limit_per_minute)
        if on_rate_limit_wait is not None:
            self.rate_limiter.on_wait = on_rate_limit_wait
        queue_path = order_queue_path if order_queue_path is not None else config.order_queue_path
        self.order_queue = OrderQueue(queue_path) if queue_path is not None else None
        self._sleep = sleep
        self._on_stream_state_change = on_stream_state_change
        self.client = self._build_client(client_options or {})
        self._symbols: dict[str, str] = {}  # user symbol -> ccxt symbol
        self._user_symbols: dict[str, str] = {}  # ccxt symbol -> user symbol
        self._orders: dict[str, Order] = {}  # client order id -> the order we track
        self._prune_at = (
            _TRACKED_ORDERS_LIMIT  # tracked orders before the next sweep of finished ones
        )
        self._streams: list[tuple[StreamSupervisor[Any], asyncio.Task[None]]] = []
        self._markets_loaded = False

    # ------------------------------------------------------------------ building
    def _build_client(self, extra_options: dict[str, Any]) -> Any:
        config = self.config
        options = dict(self.venue.client_options(config))
        options.update(extra_options)
        settings: dict[str, Any] = {
            "enableRateLimit": True,
            "timeout": config.timeout_ms,
            "options": options,
        }
        if config.api_key is not None and config.api_secret is not None:
            settings["apiKey"] = config.api_key.get_secret_value()
            settings["secret"] = config.api_secret.get_secret_value()
        client = _client_class(self.venue.client_class_name(config))(settings)
        self.venue.configure_client(client, config)
        _install_redaction(client)
        return client

    @property
    def exchange_name(self) -> str:
        return str(self.config.exchange)

    @property
    def circuit(self) -> CircuitBreaker:
        """The order endpoints' breaker (the one the durable queue waits on)."""
        return self.circuits[EndpointGroup.ORDERS]

    # ------------------------------------------------------------- request path
    async def _request(
        self,
        operation: str,
        priority: RequestPriority,
        call: Callable[[], Awaitable[T]],
        *,
        symbol: str | None = None,
        order_submission: bool = False,
        client_order_id: str | None = None,
    ) -> T:
        """One attempt: budget, circuit, ccxt call, error translation."""
        await self.rate_limiter.acquire(priority)
        circuit = self.circuits[_GROUP_OF[priority]]
        circuit.before_call()
        error: MetaExpertError | None = None
        nonce_problem = False
        try:
            result = await call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is classified below
            nonce_problem = isinstance(exc, ccxt.InvalidNonce)
            error = translate_error(
                exc,
                exchange=self.exchange_name,
                operation=operation,
                symbol=symbol,
                order_submission=order_submission,
                client_order_id=client_order_id,
                transient=self.venue.is_transient(exc),
            )
        if error is None:
            circuit.record_success()
            return result
        if classify_error(error) is ErrorClass.PERMANENT:
            circuit.record_success()  # the venue answered: it is up
        else:
            circuit.record_failure()
        if nonce_problem and hasattr(self.client, "load_time_difference"):
            try:
                await self.client.load_time_difference()
            except Exception:  # noqa: BLE001 - best effort; the retry will tell
                _logger.debug("could not resynchronise the clock with %s", self.exchange_name)
        raise error

    async def _retried(
        self,
        operation: str,
        priority: RequestPriority,
        call: Callable[[], Awaitable[T]],
        *,
        symbol: str | None = None,
    ) -> T:
        """``_request`` with backoff for recoverable failures (not for shed or open-circuit)."""
        async for attempt in retrying(
            self.retry_policy,
            sleep=self._sleep,
            retry_on=lambda exc: (
                classify_error(exc) is ErrorClass.RECOVERABLE and _not_shed_or_open(exc)
            ),
        ):
            with attempt:
                return await self._request(operation, priority, call, symbol=symbol)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------ reference data
    async def load_markets(self, *, reload: bool = False) -> None:
        if self._markets_loaded and not reload:
            return
        await self._retried(
            "load_markets", RequestPriority.ACCOUNT, lambda: self.client.load_markets(reload)
        )
        self._markets_loaded = True
        if reload:
            self._symbols.clear()

    def _matches_configuration(self, market: dict[str, Any]) -> bool:
        config = self.config
        if config.market_type is MarketType.SPOT:
            return bool(market.get("spot"))
        if config.market_type is MarketType.OPTIONS:
            return bool(market.get("option"))
        if not (market.get("swap") or market.get("future")):
            return False
        if config.contract_type is ContractType.INVERSE:
            return bool(market.get("inverse"))
        return bool(market.get("linear"))

    def ccxt_symbol(self, symbol: str) -> str:
        """The ccxt symbol for a user symbol, checked against the loaded markets."""
        cached = self._symbols.get(symbol)
        if cached is not None:
            return cached
        if not self._markets_loaded or not self.client.markets:
            raise ConfigurationError(
                f"markets of {self.exchange_name} are not loaded: await gateway.load_markets() first"
            )
        markets: dict[str, Any] = self.client.markets
        found: str | None = None
        if symbol in markets and self._matches_configuration(markets[symbol]):
            found = symbol
        if found is None:
            by_id = getattr(self.client, "markets_by_id", None) or {}
            for candidate in by_id.get(symbol.upper(), []) or by_id.get(symbol, []) or []:
                if self._matches_configuration(candidate):
                    found = candidate["symbol"]
                    break
        tried = ""
        if found is None:
            try:
                tried = self.venue.ccxt_symbol(
                    symbol, self.config.market_type, self.config.contract_type
                )
            except ConfigurationError as exc:
                raise UnknownSymbolError(
                    f"unknown symbol {symbol!r} on {self.exchange_name}: {exc}",
                    exchange=self.exchange_name,
                    operation="resolve_symbol",
                    cause="BadSymbol",
                ) from None
            if tried in markets and self._matches_configuration(markets[tried]):
                found = tried
        if found is None:
            kind = str(self.config.market_type)
            if self.config.market_type is not MarketType.SPOT:
                kind = f"{self.config.contract_type} {kind}"
            raise UnknownSymbolError(
                f"unknown symbol {symbol!r} on {self.exchange_name} {kind}: not among its "
                f"{sum(1 for m in markets.values() if self._matches_configuration(m))} markets"
                + (f" (looked for {tried})" if tried else ""),
                exchange=self.exchange_name,
                operation="resolve_symbol",
                cause="BadSymbol",
            )
        self._symbols[symbol] = found
        self._user_symbols.setdefault(found, symbol)
        return found

    def user_symbol(self, ccxt_symbol: str) -> str:
        known = self._user_symbols.get(ccxt_symbol)
        if known is not None:
            return known
        market = (self.client.markets or {}).get(ccxt_symbol)
        return str(market["id"]) if market else ccxt_symbol

    def market_spec(self, symbol: str) -> MarketSpec:
        ccxt_symbol = self.ccxt_symbol(symbol)
        return mapping.market_spec_from_ccxt(
            self.client.markets[ccxt_symbol],
            symbol,
            precision_mode=self.client.precisionMode,
            default_max_leverage=self.venue.DEFAULT_MAX_LEVERAGE,
        )

    # --------------------------------------------------------------- market data
    def serves_candles(self, symbol: str) -> bool:
        return self.venue.OPTION_CANDLES or not self.client.markets[self.ccxt_symbol(symbol)].get(
            "option"
        )

    async def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        *,
        since: int | None = None,
        limit: int | None = None,
        until: int | None = None,
    ) -> list[Bar]:
        await self.load_markets()
        market_symbol = self.ccxt_symbol(symbol)
        if not self.serves_candles(symbol):
            raise ConfigurationError(
                f"{self.config.exchange} serves no candles for options ({symbol}): paper and "
                "live runs build the option's bars from its polled mark price "
                "(engine/polled_bars.py); a backtest needs recorded option candles"
            )
        params = {"until": until} if until is not None else {}
        rows = await self._retried(
            "fetch_ohlcv",
            RequestPriority.MARKET_DATA,
            lambda: self.client.fetch_ohlcv(market_symbol, timeframe, since, limit, params),
            symbol=symbol,
        )
        return [mapping.bar_from_ccxt(row, symbol, timeframe) for row in rows]

    async def fetch_ticker(self, symbol: str) -> Tick:
        await self.load_markets()
        market_symbol = self.ccxt_symbol(symbol)
        ticker = await self._retried(
            "fetch_ticker",
            RequestPriority.MARKET_DATA,
            lambda: self.venue.fetch_ticker(self.client, market_symbol),
            symbol=symbol,
        )
        return mapping.tick_from_ticker(ticker, symbol)

    async def fetch_order_book(self, symbol: str, *, limit: int | None = None) -> OrderBook:
        await self.load_markets()
        market_symbol = self.ccxt_symbol(symbol)
        book = await self._retried(
            "fetch_order_book",
            RequestPriority.MARKET_DATA,
            lambda: self.client.fetch_order_book(market_symbol, limit),
            symbol=symbol,
        )
        return mapping.order_book_from_ccxt(book, symbol)

    async def fetch_funding_rate(self, symbol: str) -> FundingRate:
        await self.load_markets()
        market_symbol = self.ccxt_symbol(symbol)
        raw = await self._retried(
            "fetch_funding_rate",
            RequestPriority.MARKET_DATA,
            lambda: self.client.fetch_funding_rate(market_symbol),
            symbol=symbol,
        )
        return mapping.funding_rate_from_ccxt(raw, symbol, history=False)

    async def fetch_funding_rate_history(
        self, symbol: str, *, since: int | None = None, limit: int | None = None
    ) -> list[FundingRate]:
        await self.load_markets()
        market_symbol = self.ccxt_symbol(symbol)
        rows = await self._retried(
            "fetch_funding_rate_history",
            RequestPriority.MARKET_DATA,
            lambda: self.client.fetch_funding_rate_history(market_symbol, since, limit),
            symbol=symbol,
        )
        rates = [mapping.funding_rate_from_ccxt(row, symbol, history=True) for row in rows]
        return sorted(rates, key=lambda rate: rate.funding_time)

    # ------------------------------------------------------------------ account
    async def fetch_balance(self, currency: str | None = None) -> Account:
        await self.load_markets()
        if currency is None:
            if self.config.contract_type is ContractType.INVERSE:
                raise ConfigurationError(
                    "fetch_balance on inverse contracts needs the coin, e.g. currency='BTC'"
                )
            currency = (
                "USDC"
                if (
                    self.config.exchange == "bybit"
                    and self.config.market_type is MarketType.OPTIONS
                )
                else "USDT"
            )
        balance = await self._retried(
            "fetch_balance", RequestPriority.ACCOUNT, lambda: self.client.fetch_balance()
        )
        return self.account_from_venue(balance, currency.upper())

    async def fetch_positions(self, symbols: Sequence[str] | None = None) -> list[Position]:
        if self.config.market_type is MarketType.SPOT:
            return []
        await self.load_markets()
        market_symbols = [self.ccxt_symbol(symbol) for symbol in symbols] if symbols else None
        raw_positions = await self._retried(
            "fetch_positions",
            RequestPriority.ACCOUNT,
            lambda: self.client.fetch_positions(market_symbols),
        )
        positions = []
        for raw in raw_positions:
            position = self.position_from_venue(raw)
            if position is not None:
                positions.append(position)
        return positions

    # ------------------------------------------------- reading the venue's answers
    def _apply(self, order: Order, snapshot: dict[str, Any]) -> Order:
        return mapping.apply_order_snapshot(order, self.venue.normalize_order(snapshot))

    def order_from_venue(self, snapshot: dict[str, Any], symbol: str | None = None) -> Order:
        """A core order for a venue order snapshot (not tracked): the venue's rules, then the mapping."""
        fixed = self.venue.normalize_order(snapshot)
        user_symbol = (
            self.user_symbol(str(fixed["symbol"])) if fixed.get("symbol") else (symbol or "")
        )
        return mapping.order_from_snapshot(fixed, user_symbol)

    def trade_from_venue(self, raw: dict[str, Any]) -> Trade | None:
        """A core fill for a ccxt trade, or None for an execution that is no fill (funding)."""
        fixed = self.venue.normalize_trade(raw)
        if fixed is None:
            return None
        return mapping.trade_from_ccxt(fixed, self.user_symbol(str(fixed.get("symbol") or "")))

    def position_from_venue(self, raw: dict[str, Any]) -> Position | None:
        """A core position for a ccxt position: inverse and contract size from its market."""
        fixed = self.venue.normalize_position(raw)
        market = (self.client.markets or {}).get(str(fixed.get("symbol")))
        inverse = mapping.books_inverse(market) if market else None
        contract_size = mapping.market_contract_size(market) if market else None
        return mapping.position_from_ccxt(
            fixed,
            self.user_symbol(str(fixed.get("symbol"))),
            inverse=inverse,
            contract_size=contract_size,
        )

    def account_from_venue(self, balance: dict[str, Any], currency: str) -> Account:
        """The account of ``currency`` from the venue's own fields (one rule per venue module)."""
        figures = self.venue.account_figures(balance.get("info"), currency)
        return mapping.account_from_balance(balance, currency, figures)

    def _remember(self, order: Order) -> None:
        """Track ``order`` by client id; finished orders are forgotten once the map grows large."""
        self._orders[order.client_order_id] = order
        if len(self._orders) > self._prune_at:
            for client_order_id in [
                cid for cid, tracked in self._orders.items() if tracked.is_terminal
            ]:
                del self._orders[client_order_id]
            # Open orders stay; the next sweep waits until the map has doubled again, so that
            # thousands of open orders cost one sweep per doubling, not one per order (the
            # sweep on every call made a replay of 10,000 queued creates quadratic).
            self._prune_at = max(_TRACKED_ORDERS_LIMIT, 2 * len(self._orders))

    def _track(self, snapshot: dict[str, Any], fallback_symbol: str | None = None) -> Order:
        client_order_id = snapshot.get("clientOrderId")
        symbol = (
            self.user_symbol(str(snapshot.get("symbol")))
            if snapshot.get("symbol")
            else fallback_symbol
        )
        if client_order_id and client_order_id in self._orders:
            return self._apply(self._orders[client_order_id], snapshot)
        order = self.order_from_venue(snapshot, symbol)
        self._remember(order)
        return order

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        await self.load_markets()
        market_symbol = self.ccxt_symbol(symbol) if symbol else None
        snapshots = list(
            await self._retried(
                "fetch_open_orders",
                RequestPriority.ACCOUNT,
                lambda: self.client.fetch_open_orders(market_symbol),
                symbol=symbol,
            )
        )
        conditional = self.venue.conditional_listing_params(self.config)
        if conditional is not None:
            # Binance futures and OKX keep conditional (algo) orders in a list of their own.
            snapshots += await self._retried(
                "fetch_open_orders",
                RequestPriority.ACCOUNT,
                lambda: self.client.fetch_open_orders(market_symbol, None, None, dict(conditional)),
                symbol=symbol,
            )
        orders: dict[str, Order] = {}
        for snapshot in snapshots:
            order = self._track(snapshot, symbol)
            orders.setdefault(order.client_order_id or order.order_id, order)
        return list(orders.values())

    def _order_params(self, order: Order | None, client_order_id: str | None) -> dict[str, Any]:
        """Lookup/cancel parameters: the client id (when given) and the conditional-order flag."""
        params = self.venue.client_order_id_params(client_order_id) if client_order_id else {}
        if order is not None:
            params.update(self.venue.conditional_params(order, self.config))
        return params

    async def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order:
        if not order_id and not client_order_id:
            raise ConfigurationError("fetch_order needs order_id or client_order_id")
        await self.load_markets()
        market_symbol = self.ccxt_symbol(symbol)
        tracked = self._orders.get(client_order_id) if client_order_id else None
        params = self._order_params(tracked, client_order_id if not order_id else None)
        snapshot = await self._retried(
            "fetch_order",
            RequestPriority.ACCOUNT,
            lambda: self.venue.fetch_order(self.client, order_id, market_symbol, params),
            symbol=symbol,
        )
        return self._track(snapshot, symbol)

    async def _lookup_by_client_id(self, order: Order, market_symbol: str) -> dict[str, Any] | None:
        """The venue's record of ``order`` by client order id, or None if it has none."""
        params = self._order_params(order, order.client_order_id)
        try:
            snapshot = await self._retried(
                "fetch_order",
                RequestPriority.ORDER,
                lambda: self.venue.fetch_order(self.client, None, market_symbol, params),
                symbol=order.symbol,
            )
        except OrderNotFoundError:
            return None
        except ExchangePermanentError as exc:
            # Some venues answer an unknown client id with a generic error; only a real
            # "not found" is proof of absence, so anything else propagates.
            if "not exist" in str(exc).lower() or "not found" in str(exc).lower():
                return None
            raise
        if snapshot and snapshot.get("clientOrderId") not in (None, "", order.client_order_id):
            return None
        if snapshot and not _same_order(order, snapshot, market_symbol):
            # Another process (another database, an earlier install) used this client id on
            # the same venue account: its order is not ours, and adopting its fill would
            # book a position this run never opened.
            _logger.warning(
                "%s order %s: the venue's order with this client id is not this run's "
                "(side %s amount %s at %s); it is not adopted",
                self.exchange_name,
                order.client_order_id,
                snapshot.get("side"),
                snapshot.get("amount"),
                snapshot.get("timestamp"),
            )
            return None
        return snapshot or None

    # ------------------------------------------------------------------- orders
    def _order_arguments(
        self, order: Order
    ) -> tuple[str, str, float, float | None, dict[str, Any]]:
        if order.order_type is OrderType.TRAILING_STOP and not (
            self.config.exchange is Exchange.BINANCE
            and self.config.market_type is MarketType.FUTURES
        ):  # ccxt would send another venue's (or Binance spot's) trailing stop as a plain order
            raise ConfigurationError(
                f"trailing stops are placed at the venue only on Binance futures; on "
                f"{self.config.exchange} {self.config.market_type} the engine keeps them"
            )
        order_type, side, amount, price, params = mapping.ccxt_order_arguments(order)
        params.update(self.venue.order_params(order, self.config))
        return order_type, side, amount, price, params

    def acceptance_window(self) -> float:
        """Seconds after sending within which the venue may still accept a timed-out order."""
        window = self.venue.acceptance_window_ms(self.client)
        return max(float(window or 0) / 1000.0, 0.0)

    async def _submit(
        self,
        order: Order,
        market_symbol: str,
        *,
        maybe_accepted: bool,
        sent_at: float | None = None,
    ) -> dict[str, Any]:
        """Create ``order`` at the venue exactly once, however the attempts fail.

        After an unknown outcome the order is looked up by client order id. If the venue
        does not know it, the lookup is repeated once the acceptance window of the lost
        request has passed (a delayed request can no longer land after that); only then is
        the order resubmitted, with the same client order id.
        """
        order_type, side, amount, price, params = self._order_arguments(order)
        state: dict[str, Any] = {
            "maybe_accepted": maybe_accepted,
            "sent_at": sent_at if sent_at is not None else time.monotonic(),
        }

        def retryable(exc: BaseException) -> bool:
            kind = classify_error(exc)
            return kind in (
                ErrorClass.RECOVERABLE,
                ErrorClass.UNKNOWN_OUTCOME,
            ) and _not_shed_or_open(exc)

        async for attempt in retrying(
            self.order_retry_policy, sleep=self._sleep, retry_on=retryable
        ):
            with attempt:
                if state["maybe_accepted"]:
                    existing = await self._lookup_by_client_id(order, market_symbol)
                    if existing is None:
                        settle = state["sent_at"] + self.acceptance_window() - time.monotonic()
                        if settle > 0:
                            await self._sleep(settle)
                            existing = await self._lookup_by_client_id(order, market_symbol)
                    if existing is not None:
                        return existing
                    state["maybe_accepted"] = False
                try:
                    state["sent_at"] = time.monotonic()
                    return await self._request(
                        "create_order",
                        RequestPriority.ORDER,
                        lambda: self.client.create_order(
                            market_symbol, order_type, side, amount, price, dict(params)
                        ),
                        symbol=order.symbol,
                        order_submission=True,
                        client_order_id=order.client_order_id,
                    )
                except OrderOutcomeUnknownError:
                    state["maybe_accepted"] = True
                    raise
                except ExchangeOrderRejectedError as exc:
                    if self.venue.is_duplicate_client_order_id(exc):
                        existing = await self._lookup_by_client_id(order, market_symbol)
                        if existing is not None:
                            return existing
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def create_order(self, order: Order) -> Order:
        if order.status is not OrderStatus.CREATED:
            raise ConfigurationError(
                f"order {order.client_order_id} is {order.status}: only a created order can be submitted"
            )
        await self.load_markets()
        market_symbol = self.ccxt_symbol(order.symbol)
        self._remember(order)
        try:
            snapshot = await self._submit(order, market_symbol, maybe_accepted=False)
        except ExchangeOrderRejectedError as exc:
            if order.can_transition(OrderStatus.REJECTED):
                order.reject(str(exc), now_ms())
            raise
        except RecoverableError as exc:
            if self.order_queue is None or isinstance(exc, RequestShed):
                raise
            queue_id = self.order_queue.enqueue(
                OperationKind.CREATE,
                order.client_order_id,
                order.symbol,
                order_to_payload(order),
                error=redact(str(exc))[:500],
                next_attempt_at=now_ms() + int(self.acceptance_window() * 1000),
            )
            raise OrderQueuedError(
                f"{self.exchange_name} create_order {order.symbol}: venue unavailable ({exc}); "
                f"order {order.client_order_id} journalled as operation {queue_id} for replay",
                client_order_id=order.client_order_id,
                queue_id=queue_id,
            ) from None
        return self._apply(order, snapshot)

    async def cancel_order(self, order: Order) -> Order:
        await self.load_markets()
        market_symbol = self.ccxt_symbol(order.symbol)
        if order.is_terminal:
            return order
        if self.order_queue is not None and self.order_queue.has_pending(
            OperationKind.CREATE, order.client_order_id
        ):
            # Its create waits in the queue (it may or may not have reached the venue): the
            # cancel waits behind it, and a replayed create with a cancel queued is not sent.
            queue_id = self.order_queue.enqueue_cancel(
                order.client_order_id,
                order.symbol,
                order.order_id,
                order_type=order.order_type.value,
            )
            raise OrderQueuedError(
                f"{self.exchange_name} cancel_order {order.symbol}: the create of {order.client_order_id} "
                f"is still queued; the cancel is journalled behind it as operation {queue_id}",
                client_order_id=order.client_order_id,
                queue_id=queue_id,
            )
        by_client_id = not order.order_id or order.status is OrderStatus.CREATED
        params = self._order_params(order, order.client_order_id if by_client_id else None)
        exchange_id = None if by_client_id else order.order_id
        snapshot: dict[str, Any] | None = None
        try:
            try:
                snapshot = await self._retried(
                    "cancel_order",
                    RequestPriority.CANCEL,
                    lambda: self.client.cancel_order(exchange_id, market_symbol, params),
                    symbol=order.symbol,
                )
            except OrderNotFoundError:
                # Gone already (filled, or cancelled by an earlier attempt whose answer was
                # lost): report what the venue knows about it.
                existing = await self._lookup_by_client_id(order, market_symbol)
                if existing is None:
                    raise
                return self._apply(order, existing)
        except RecoverableError as exc:
            if self.order_queue is None or isinstance(exc, RequestShed):
                raise
            queue_id = self.order_queue.enqueue_cancel(
                order.client_order_id,
                order.symbol,
                order.order_id,
                error=redact(str(exc))[:500],
                order_type=order.order_type.value,
            )
            raise OrderQueuedError(
                f"{self.exchange_name} cancel_order {order.symbol}: venue unavailable ({exc}); "
                f"cancel of {order.client_order_id} journalled as operation {queue_id}",
                client_order_id=order.client_order_id,
                queue_id=queue_id,
            ) from None
        if not snapshot or not snapshot.get("status"):
            # Bybit and OKX answer a cancel with the order's ids only; what filled before the
            # cancel arrived is read back, or it was never booked (a resting spot buy held
            # 0.0459 BTC more at the venue than in the engine, left there after the close).
            try:
                final = await self._lookup_by_client_id(order, market_symbol)
            except (PermanentError, RecoverableError):
                final = None
            if final and final.get("status"):
                return self._apply(order, final)
            snapshot = dict(snapshot or {})
            snapshot["status"] = "canceled"
            snapshot.setdefault("filled", order.filled_quantity)
        return self._apply(order, snapshot)

    # ----------------------------------------------------------------- settings
    def _require_derivatives(self, what: str) -> None:
        if self.config.market_type is MarketType.SPOT:
            raise ConfigurationError(f"{what} applies to futures and options, not to spot markets")

    def _already_set(self, exc: MetaExpertError) -> bool:
        cause = getattr(exc, "cause", "")
        return cause in {"MarginModeAlreadySet", "NoChange"} or self.venue.is_already_set(exc)

    async def _setting(
        self, operation: str, call: Callable[[], Awaitable[Any]], symbol: str | None
    ) -> bool:
        try:
            await self._retried(operation, RequestPriority.ACCOUNT, call, symbol=symbol)
        except (ExchangePermanentError, ExchangeOrderRejectedError) as exc:
            if self._already_set(exc):
                return False
            raise
        return True

    def _setting_sides(self, margin_mode: MarginMode | None) -> list[PositionSide | None]:
        """Venues with per-side isolated settings (OKX hedge mode) need one call per side."""
        if self.venue.SIDED_SETTINGS and self.config.hedged and margin_mode is MarginMode.ISOLATED:
            return [PositionSide.LONG, PositionSide.SHORT]
        return [None]

    async def set_leverage(self, symbol: str, leverage: float) -> bool:
        self._require_derivatives("leverage")
        await self.load_markets()
        spec = self.market_spec(symbol)
        if leverage < 1:
            raise ConfigurationError(f"leverage must be at least 1, got {leverage}")
        if leverage > spec.max_leverage:
            raise ConfigurationError(
                f"leverage {leverage:g} is above the maximum {spec.max_leverage:g} of {symbol} "
                f"on {self.exchange_name}"
            )
        market_symbol = self.ccxt_symbol(symbol)
        sides = self._setting_sides(self.config.margin_mode)
        changed = False
        for side in sides:
            params = self.venue.leverage_params(self.config, side)
            changed |= await self._setting(
                "set_leverage",
                lambda params=params: self.client.set_leverage(
                    int(leverage), market_symbol, params
                ),
                symbol,
            )
        return changed

    async def set_margin_mode(
        self, symbol: str, margin_mode: MarginMode | None = None, *, leverage: float | None = None
    ) -> bool:
        self._require_derivatives("margin mode")
        await self.load_markets()
        mode = MarginMode(margin_mode or self.config.margin_mode or MarginMode.ISOLATED)
        market_symbol = self.ccxt_symbol(symbol)
        changed = False
        for side in self._setting_sides(mode):
            params = self.venue.margin_mode_params(self.config, mode, leverage, side)
            changed |= await self._setting(
                "set_margin_mode",
                lambda params=params: self.client.set_margin_mode(
                    mode.value, market_symbol, params
                ),
                symbol,
            )
        return changed

    async def set_position_mode(
        self, hedged: bool | None = None, symbol: str | None = None
    ) -> bool:
        self._require_derivatives("position mode")
        await self.load_markets()
        wanted = self.config.hedged if hedged is None else hedged
        market_symbol = self.ccxt_symbol(symbol) if symbol else None
        params = self.venue.position_mode_params(self.config)
        return await self._setting(
            "set_position_mode",
            lambda: self.client.set_position_mode(wanted, market_symbol, params),
            symbol,
        )

    async def close(self) -> None:
        for _, task in self._streams:
            task.cancel()
        for _, task in self._streams:
            try:
                await task
            except asyncio.CancelledError:
                continue
            except Exception as exc:  # noqa: BLE001 - closing anyway, but say why it had ended
                _logger.info("stream task ended with %s", redact(f"{type(exc).__name__}: {exc}"))
        self._streams.clear()
        try:
            await self.client.close()
        finally:
            if self.order_queue is not None:
                self.order_queue.close()
