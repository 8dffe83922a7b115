"""Binance spot-only REST: avgPrice, test orders, cancel-replace and the spot account.

The routes spot shares with the futures markets are in ``routes.py``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from metaexpert.sandbox.core.model import SandboxOrder, fmt
from metaexpert.sandbox.core.rejects import Reject
from metaexpert.sandbox.core.service import Route, json_response, read_params
from metaexpert.sandbox.venues.binance import orders as wire
from metaexpert.sandbox.venues.binance.errors import BinanceError, from_reject, missing_parameter
from metaexpert.sandbox.venues.binance.markets import SPOT

if TYPE_CHECKING:
    from metaexpert.sandbox.venues.binance.routes import SandboxApp


class SpotRoutes:
    def __init__(self, app: SandboxApp) -> None:
        self.app = app

    @property
    def exchange(self) -> Any:
        return self.app.exchange

    def routes(self) -> list[Route]:
        if SPOT not in self.exchange.markets:
            return []
        return [
            ("GET", "/api/v3/avgPrice", self.spot_avg_price),
            ("POST", "/api/v3/order/test", self.spot_test_order),
            ("POST", "/api/v3/order/cancelReplace", self.spot_cancel_replace),
            ("GET", "/api/v3/account", self.spot_account),
        ]

    async def spot_avg_price(self, request: web.Request) -> web.Response:
        params = await read_params(request)
        symbol = self.app.symbol(self.app.market(SPOT), params)
        return json_response(
            {"mins": 5, "price": fmt(self.exchange.price(symbol)), "closeTime": self.exchange.now}
        )

    async def spot_test_order(self, request: web.Request) -> web.Response:
        _api_key, params = await self.app.signed(request)
        self.app.symbol(self.app.market(SPOT), params)
        for name in ("side", "type"):
            if not params.get(name):
                raise missing_parameter(name)
        return json_response({})

    async def spot_cancel_replace(self, request: web.Request) -> web.Response:
        api_key, params = await self.app.signed(request)
        market = self.app.market(SPOT)
        symbol = self.app.symbol(market, params)
        mode = params.get("cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise missing_parameter("cancelReplaceMode")
        try:
            old = self.exchange.find_order(
                SPOT,
                api_key,
                symbol,
                wire.order_id(params, "cancelOrderId"),
                params.get("cancelOrigClientOrderId"),
                on_cancel=True,
            )
            self.exchange.cancel(old)
        except (BinanceError, Reject) as failure:
            error = from_reject(failure) if isinstance(failure, Reject) else failure
            body = {
                "code": -2022 if mode == "STOP_ON_FAILURE" else -2021,
                "msg": "Order cancel-replace failed.",
                "data": {
                    "cancelResult": "FAILURE",
                    "newOrderResult": "NOT_ATTEMPTED",
                    "cancelResponse": error.body(),
                    "newOrderResponse": None,
                },
            }
            return json_response(body, status=400)
        new_params = {
            k: v
            for k, v in params.items()
            if k not in ("cancelReplaceMode", "cancelOrderId", "cancelOrigClientOrderId")
        }
        new = self.exchange.place_order(wire.parse_spot_order(SPOT, api_key, new_params))
        return json_response(
            {
                "cancelResult": "SUCCESS",
                "newOrderResult": "SUCCESS",
                "cancelResponse": spot_cancel_body(old, {}),
                "newOrderResponse": spot_order_response(
                    new, params.get("newOrderRespType", "FULL")
                ),
            }
        )

    async def spot_account(self, request: web.Request) -> web.Response:
        api_key, params = await self.app.signed(request)
        account = self.exchange.spot_accounts[api_key]
        balances = account.balances()
        if params.get("omitZeroBalances", "false").lower() == "true":
            balances = [row for row in balances if float(row["free"]) or float(row["locked"])]
        spec = self.exchange.markets[SPOT]
        return json_response(
            {
                "makerCommission": int(spec.maker_fee * 10_000),
                "takerCommission": int(spec.taker_fee * 10_000),
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": fmt(spec.maker_fee),
                    "taker": fmt(spec.taker_fee),
                    "buyer": "0",
                    "seller": "0",
                },
                "canTrade": self.exchange.can_trade[api_key],
                "canWithdraw": True,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self.exchange.now,
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": 1,
            }
        )


def spot_order_response(order: SandboxOrder, response_type: str) -> dict[str, object]:
    full = wire.spot_order_ack(order)
    if response_type.upper() == "ACK":
        return {
            key: full[key]
            for key in ("symbol", "orderId", "orderListId", "clientOrderId", "transactTime")
        }
    if response_type.upper() == "RESULT":
        full.pop("fills")
    return full


def spot_cancel_body(order: SandboxOrder, params: dict[str, str]) -> dict[str, object]:
    body = wire.spot_order(order)
    for key in (
        "time",
        "updateTime",
        "isWorking",
        "icebergQty",
        "workingTime",
        "origQuoteOrderQty",
    ):
        body.pop(key, None)
    body["origClientOrderId"] = order.client_order_id
    body["clientOrderId"] = params.get("newClientOrderId") or secrets.token_hex(11)
    body["transactTime"] = order.update_time
    return body
