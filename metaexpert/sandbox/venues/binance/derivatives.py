"""Binance futures-only REST, shared by USD-M (/fapi) and COIN-M (/dapi): positions, account,
leverage, margin type, position mode, funding, order amendment and the algo-order API.

Why the algo API: since late 2025 Binance lists, fetches and cancels conditional futures orders
(STOP_MARKET, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET, STOP, TAKE_PROFIT) only through
``/algoOrder``, ``/openAlgoOrders``, ``/allAlgoOrders`` and ``/algoOpenOrders``, the paths ccxt
4.5 calls (``fapiPrivate{Get,Post,Delete}AlgoOrder``...). A triggered algo order hands over to a
new plain order whose id it reports as ``actualOrderId``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from metaexpert.sandbox.core.model import FuturesAccount, FuturesPosition, SandboxOrder, fmt
from metaexpert.sandbox.core.service import Handler, Route, json_response, read_params
from metaexpert.sandbox.venues.binance import orders as wire
from metaexpert.sandbox.venues.binance import payloads
from metaexpert.sandbox.venues.binance.errors import BinanceError, missing_parameter
from metaexpert.sandbox.venues.binance.markets import COINM

if TYPE_CHECKING:
    from metaexpert.sandbox.venues.binance.routes import BinanceMarket, SandboxApp

OK = {"code": 200, "msg": "success"}
CANCELLED_ALL = {"code": 200, "msg": "The operation of cancel all open order is done."}


class DerivativeRoutes:
    def __init__(self, app: SandboxApp) -> None:
        self.app = app

    @property
    def exchange(self) -> Any:
        return self.app.exchange

    def routes(self, market: BinanceMarket) -> list[Route]:
        def bind(method: Callable[[BinanceMarket, web.Request], Any]) -> Handler:
            async def handler(request: web.Request) -> web.StreamResponse:
                return await method(market, request)

            return handler

        p, root = market.prefix, market.prefix.rsplit("/", 1)[0]  # "/fapi/v1", "/fapi"
        return [
            ("GET", f"{root}/v2/ticker/price", bind(self.app.price)),
            ("GET", f"{p}/premiumIndex", bind(self.premium_index)),
            ("GET", f"{p}/fundingRate", bind(self.funding_history)),
            ("PUT", f"{p}/order", bind(self.modify_order)),
            ("POST", f"{p}/algoOrder", bind(self.new_algo)),
            ("GET", f"{p}/algoOrder", bind(self.get_algo)),
            ("DELETE", f"{p}/algoOrder", bind(self.cancel_algo)),
            ("GET", f"{p}/openAlgoOrders", bind(self.open_algo)),
            ("DELETE", f"{p}/algoOpenOrders", bind(self.cancel_all_algo)),
            ("GET", f"{p}/allAlgoOrders", bind(self.all_algo)),
            ("POST", f"{p}/leverage", bind(self.leverage)),
            ("POST", f"{p}/marginType", bind(self.margin_type)),
            ("GET", f"{p}/positionSide/dual", bind(self.get_dual)),
            ("POST", f"{p}/positionSide/dual", bind(self.set_dual)),
            ("GET", f"{p}/leverageBracket", bind(self.leverage_bracket)),
            ("GET", f"{root}/v2/leverageBracket", bind(self.leverage_bracket)),
            ("GET", f"{p}/symbolConfig", bind(self.symbol_config)),
            ("GET", f"{p}/commissionRate", bind(self.commission_rate)),
            ("GET", f"{root}/v2/balance", bind(self.balance)),
            ("GET", f"{root}/v3/balance", bind(self.balance)),
            ("GET", f"{root}/v2/account", bind(self.account)),
            ("GET", f"{root}/v3/account", bind(self.account)),
            ("GET", f"{root}/v2/positionRisk", bind(self.position_risk)),
            ("GET", f"{root}/v3/positionRisk", bind(self.position_risk)),
            *(
                [
                    ("GET", f"{p}/balance", bind(self.balance)),
                    ("GET", f"{p}/account", bind(self.account)),
                    ("GET", f"{p}/positionRisk", bind(self.position_risk)),
                ]
                if market.name == COINM
                else []
            ),
        ]

    # ------------------------------------------------------------------ market data
    async def premium_index(self, market: BinanceMarket, request: web.Request) -> web.Response:
        """GET premiumIndex: mark, index, the announced funding rate and ``nextFundingTime``.
        COIN-M answers a list even for one symbol, as Binance's ``/dapi`` does (ccxt reads [0])."""
        params = await read_params(request)
        if market.name == COINM:
            return json_response(
                [
                    payloads.premium_index(self.exchange, symbol, market.name)
                    for symbol in self.app.symbols_param(market, params)
                ]
            )
        return self.app.one_or_all(
            market, params, lambda s: payloads.premium_index(self.exchange, s, market.name)
        )

    async def funding_history(self, market: BinanceMarket, request: web.Request) -> web.Response:
        """GET fundingRate: the settled rates of every funding time (held or not), oldest first,
        with the mark price each settled at; ``startTime``/``endTime``/``limit`` as on Binance."""
        params = await read_params(request)
        symbols = self.app.symbols_param(market, params)
        start = int(params.get("startTime") or 0)
        end = int(params.get("endTime") or 2**62)
        limit = min(int(params.get("limit") or 100), 1000)
        rows = [
            {
                "symbol": record["symbol"],
                "fundingTime": record["time"],
                "fundingRate": fmt(float(str(record["rate"]))),
                "markPrice": fmt(float(str(record["mark"]))),
            }
            for record in self.exchange.funding_rates
            if record["symbol"] in symbols
            and record["market"] == market.name
            and start <= int(str(record["time"])) <= end
        ]
        return json_response(rows[:limit])

    # ------------------------------------------------------------------ orders
    async def modify_order(self, market: BinanceMarket, request: web.Request) -> web.Response:
        """PUT /order: change price and quantity of an open LIMIT order in place."""
        api_key, params = await self.app.signed(request)
        order = self.app.find(market, api_key, params)
        if not order.is_open:
            raise BinanceError(-2013, "Order does not exist.")
        if order.kind.value != "LIMIT":
            raise BinanceError(-4150, "Only limit order is supported for modification.")
        side = wire.required(params, "side").upper()
        if side != order.side:
            raise BinanceError(-4151, "Side of the order is not same as the original order.")
        quantity = wire.decimal(wire.required(params, "quantity"), "quantity")
        price = wire.decimal(wire.required(params, "price"), "price")
        self.exchange.amend(order, side, quantity, price)
        return json_response(wire.futures_order(order))

    async def new_algo(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.app.signed(request)
        order = self.exchange.place_order(
            wire.parse_futures_order(market.name, api_key, params, algo=True)
        )
        return json_response(wire.algo_order(order))

    def _find_algo(
        self, market: BinanceMarket, api_key: str, params: dict[str, str], *, on_cancel: bool
    ) -> SandboxOrder:
        algo_id, client_id = wire.order_id(params, "algoId"), params.get("clientAlgoId")
        if algo_id is None and not client_id:
            raise BinanceError(
                -1102,
                "Param 'algoId' or 'origClientOrderId' must be sent, but both were empty/null!",
            )
        symbol = (
            self.exchange.check_symbol(market.name, params["symbol"])
            if params.get("symbol")
            else None
        )
        return self.exchange.find_order(
            market.name, api_key, symbol, algo_id, client_id, algo=True, on_cancel=on_cancel
        )

    async def get_algo(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.app.signed(request)
        return json_response(
            wire.algo_order(self._find_algo(market, api_key, params, on_cancel=False))
        )

    async def cancel_algo(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.app.signed(request)
        order = self._find_algo(market, api_key, params, on_cancel=True)
        self.exchange.cancel(order)
        return json_response(
            {
                "algoId": order.order_id,
                "clientAlgoId": order.client_order_id,
                "code": "200",
                "msg": "success",
            }
        )

    async def open_algo(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.app.signed(request)
        symbol = self.app.optional_symbol(market, params)
        orders = self.exchange.open_orders(market.name, api_key, symbol, algo=True)
        return json_response([wire.algo_order(order) for order in orders])

    async def cancel_all_algo(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.app.signed(request)
        symbol = self.app.symbol(market, params)
        for order in self.exchange.open_orders(market.name, api_key, symbol, algo=True):
            self.exchange.cancel(order)
        return json_response(CANCELLED_ALL)

    async def all_algo(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.app.signed(request)
        orders = self.app.order_history(market, api_key, params, algo=True, cursor="algoId")
        return json_response([wire.algo_order(order) for order in orders])

    # ------------------------------------------------------------------ account settings
    async def leverage(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.app.signed(request)
        symbol = self.app.symbol(market, params)
        raw = params.get("leverage")
        if not raw:
            raise missing_parameter("leverage")
        try:
            leverage = int(raw)
        except ValueError as exc:
            raise BinanceError(
                -1100,
                "Illegal characters found in parameter 'leverage'; legal range is '^[0-9]+$'.",
            ) from exc
        self.exchange.margin.set_leverage(market.name, api_key, symbol, leverage)
        return json_response(
            {"leverage": leverage, "maxNotionalValue": "1000000000", "symbol": symbol}
        )

    async def margin_type(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.app.signed(request)
        symbol = self.app.symbol(market, params)
        margin_type = params.get("marginType")
        if not margin_type:
            raise missing_parameter("marginType")
        self.exchange.margin.set_margin_type(market.name, api_key, symbol, margin_type.upper())
        return json_response(OK)

    async def get_dual(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, _ = await self.app.signed(request)
        return json_response(
            {"dualSidePosition": self.exchange.margin_accounts[market.name][api_key].dual_side}
        )

    async def set_dual(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.app.signed(request)
        raw = params.get("dualSidePosition")
        if raw is None or raw.lower() not in ("true", "false"):
            raise missing_parameter("dualSidePosition")
        self.exchange.margin.set_dual_side(market.name, api_key, raw.lower() == "true")
        return json_response(OK)

    async def leverage_bracket(self, market: BinanceMarket, request: web.Request) -> web.Response:
        _api_key, params = await self.app.signed(request)
        config = self.app.config
        rows = [
            {
                "symbol": symbol,
                "brackets": [
                    {
                        "bracket": 1,
                        "initialLeverage": config.max_leverage,
                        "notionalCap": 1_000_000_000,
                        "notionalFloor": 0,
                        "maintMarginRatio": config.maintenance_margin_rate,
                        "cum": 0.0,
                    }
                ],
            }
            for symbol in self.app.symbols_param(market, params)
        ]
        return json_response(rows[0] if "symbol" in params else rows)

    async def symbol_config(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.app.signed(request)
        account = self.exchange.margin_accounts[market.name][api_key]
        rows = []
        for symbol in self.app.symbols_param(market, params):
            margin_type = account.margin_type.get(symbol, "CROSSED")
            rows.append(
                {
                    "symbol": symbol,
                    "marginType": "ISOLATED" if margin_type == "ISOLATED" else "CROSSED",
                    "isAutoAddMargin": "false",
                    "leverage": self.exchange.margin.leverage(account, symbol),
                    "maxNotionalValue": "1000000000",
                }
            )
        return json_response(rows)

    async def commission_rate(self, market: BinanceMarket, request: web.Request) -> web.Response:
        _api_key, params = await self.app.signed(request)
        symbol = self.app.symbol(market, params)
        spec = self.exchange.markets[market.name]
        return json_response(
            {
                "symbol": symbol,
                "makerCommissionRate": fmt(spec.maker_fee),
                "takerCommissionRate": fmt(spec.taker_fee),
            }
        )

    # ------------------------------------------------------------------ account and positions
    async def balance(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, _ = await self.app.signed(request)
        view = self.account_view(market.name, api_key)
        rows = [
            {
                "accountAlias": "SandboxAlias",
                "asset": asset["asset"],
                "balance": asset["walletBalance"],
                "crossWalletBalance": asset["crossWalletBalance"],
                "crossUnPnl": asset["crossUnPnl"],
                "availableBalance": asset["availableBalance"],
                "maxWithdrawAmount": asset["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": asset["updateTime"],
            }
            for asset in view["assets"]  # type: ignore[attr-defined]
        ]
        return json_response(rows)

    async def account(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, _ = await self.app.signed(request)
        return json_response(self.account_view(market.name, api_key))

    async def position_risk(self, market: BinanceMarket, request: web.Request) -> web.Response:
        api_key, params = await self.app.signed(request)
        symbol = self.app.optional_symbol(market, params)
        include_empty = "/v2/" in request.path or market.name == COINM
        account = self.exchange.margin_accounts[market.name][api_key]
        positions = self.exchange.positions(
            market.name, api_key, symbol, include_empty=include_empty
        )
        return json_response([self.position_row(account, position) for position in positions])

    def position_row(self, account: FuturesAccount, position: FuturesPosition) -> dict[str, object]:
        margin = self.exchange.margin
        market = position.market
        mark = margin.mark(position)
        leverage = margin.leverage(account, position.symbol)
        isolated = account.margin_type.get(position.symbol, "CROSSED") == "ISOLATED"
        notional = margin.notional(market, position.symbol, position.signed_amount, mark)
        unrealized = margin.unrealized(position)
        initial = abs(notional) / leverage
        maintenance = abs(notional) * self.app.config.maintenance_margin_rate
        isolated_wallet = margin.position_margin(account, position) if isolated else 0.0
        asset = margin.settle_asset(market, position.symbol)
        wallet = margin.wallet(account, asset if margin.is_inverse(market) else None)
        row: dict[str, object] = {
            "symbol": position.symbol,
            "positionSide": position.position_side,
            "positionAmt": fmt(position.signed_amount),
            "entryPrice": fmt(position.entry_price),
            "breakEvenPrice": fmt(position.entry_price),
            "markPrice": fmt(mark),
            "unRealizedProfit": fmt(unrealized),
            "unrealizedProfit": fmt(unrealized),
            "liquidationPrice": fmt(margin.liquidation_price(account, position)),
            "isolatedMargin": fmt(isolated_wallet + unrealized if isolated else 0.0),
            "isolatedWallet": fmt(isolated_wallet),
            "notional": fmt(notional),
            "marginAsset": asset,
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
        if margin.is_inverse(market):
            row.pop("notional")
            row["notionalValue"] = fmt(notional)
            row["maxQty"] = "1000000"
        return row

    def account_view(self, market: str, api_key: str) -> dict[str, object]:
        margin = self.exchange.margin
        account = self.exchange.margin_accounts[market][api_key]
        inverse = margin.is_inverse(market)
        positions = account.open_positions()
        now = self.exchange.now
        assets = []
        for asset, balance in sorted(account.wallet.items()):
            # linear: every figure is in the main margin coin (USDT); inverse: per coin
            main = asset == "USDT" if not inverse else True
            selected = [
                p
                for p in positions
                if not inverse or margin.settle_asset(market, p.symbol) == asset
            ]
            unrealized = sum(margin.unrealized(p) for p in selected) if main else 0.0
            position_margin = (
                sum(margin.position_margin(account, p) for p in selected) if main else 0.0
            )
            order_margin = (
                margin.open_order_margin(account, asset if inverse else None) if main else 0.0
            )
            available = (
                margin.available_balance(account, asset if inverse else None) if main else balance
            )
            assets.append(
                {
                    "asset": asset,
                    "walletBalance": fmt(balance),
                    "unrealizedProfit": fmt(unrealized),
                    "marginBalance": fmt(balance + unrealized),
                    "maintMargin": "0",
                    "initialMargin": fmt(position_margin + order_margin),
                    "positionInitialMargin": fmt(position_margin),
                    "openOrderInitialMargin": fmt(order_margin),
                    "crossWalletBalance": fmt(balance),
                    "crossUnPnl": fmt(unrealized),
                    "availableBalance": fmt(available),
                    "maxWithdrawAmount": fmt(max(available, 0.0)),
                    "marginAvailable": True,
                    "updateTime": now,
                }
            )
        rows = [self.position_row(account, position) for position in positions]
        if inverse:
            return {
                "feeTier": 0,
                "canTrade": self.exchange.can_trade.get(api_key, False),
                "canDeposit": True,
                "canWithdraw": True,
                "updateTime": now,
                "assets": assets,
                "positions": rows,
            }
        unrealized = sum(margin.unrealized(p) for p in positions)
        position_margin = sum(margin.position_margin(account, p) for p in positions)
        order_margin = margin.open_order_margin(account)
        available = margin.available_balance(account)
        wallet_total = margin.wallet(account)
        return {
            "feeTier": 0,
            "canTrade": self.exchange.can_trade.get(api_key, False),
            "canDeposit": True,
            "canWithdraw": True,
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
            "updateTime": now,
            "totalInitialMargin": fmt(position_margin + order_margin),
            "totalMaintMargin": fmt(margin.maintenance_margin(account)),
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
            "positions": rows,
        }
