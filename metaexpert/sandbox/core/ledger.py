"""The ledger: the sandbox's own record of accounts, positions, orders, fills and funding.

Tests compare what a client sees through a venue's API with this, so it is venue-neutral plain
data. ``futures_*`` and ``positions`` describe the first linear market (as before venues had
several derivative markets); ``markets`` has every derivative market by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metaexpert.sandbox.core.exchange import SandboxExchange


def ledger(exchange: SandboxExchange) -> dict[str, object]:
    """Everything a test may want to assert on, as plain data."""
    accounts: dict[str, object] = {}
    for api_key in exchange.secrets:
        spot = exchange.spot_accounts[api_key]
        entry: dict[str, object] = {
            "spot_balances": {
                asset: {
                    "free": spot.free.get(asset, 0.0),
                    "locked": spot.locked.get(asset, 0.0),
                }
                for asset in sorted(set(spot.free) | set(spot.locked))
            },
        }
        first = True
        for market, market_accounts in exchange.margin_accounts.items():
            futures = market_accounts[api_key]
            view = {
                "wallet": dict(futures.wallet),
                "available": exchange.margin.available_balance(futures),
                "dual_side_position": futures.dual_side,
                "leverage": dict(futures.leverage),
                "margin_type": dict(futures.margin_type),
                "positions": [
                    {
                        "market": market,
                        "symbol": position.symbol,
                        "position_side": position.position_side,
                        "amount": position.signed_amount,
                        "entry_price": position.entry_price,
                        "unrealized_pnl": exchange.margin.unrealized(position),
                        "realized_pnl": position.realized_pnl,
                        "liquidation_price": exchange.margin.liquidation_price(futures, position),
                    }
                    for position in futures.open_positions()
                ],
            }
            entry.setdefault("markets", {})[market] = view  # type: ignore[index]
            if first and futures is exchange.futures_accounts.get(api_key):
                first = False
                entry.update(
                    {
                        "futures_wallet": view["wallet"],
                        "futures_available": view["available"],
                        "dual_side_position": view["dual_side_position"],
                        "leverage": view["leverage"],
                        "margin_type": view["margin_type"],
                        "positions": view["positions"],
                    }
                )
        accounts[api_key] = entry
    return {
        "time": exchange.now,
        "prices": {symbol: exchange.price(symbol) for symbol in exchange.series},
        "accounts": accounts,
        "orders": [
            order.to_ledger()
            for market in exchange.orders
            for order in exchange.orders[market].values()
        ],
        "fills": [fill.to_ledger() for market in exchange.fills for fill in exchange.fills[market]],
        "funding": list(exchange.funding),
        "funding_rates": list(exchange.funding_rates),
    }
