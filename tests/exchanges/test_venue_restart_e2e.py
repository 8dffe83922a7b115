"""Restarts mid-trade on the Bybit inverse and OKX spot sandboxes (issue 16).

A first process opens a protected position and ends; a second one, on the same database,
must find the position and its protective orders, close the position, leave nothing at the
venue, and agree with the sandbox's ledger on every order and on the wallet.
"""

from __future__ import annotations

import asyncio

import pytest

from metaexpert.core.enums import OrderStatus
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer
from tests.exchanges.test_venue_live_e2e import KEY, PASSPHRASE, SECRET, _exact, _expert, _run_built

pytestmark = pytest.mark.network


def _server(venue: str, **balances) -> SandboxServer:
    account = AccountConfig(api_key=KEY, secret=SECRET, passphrase=PASSPHRASE, **balances)
    return SandboxServer(
        SandboxConfig(venue=venue, timeframe="1m", speed=0.0, tick_replay=False, accounts=[account])
    )


def _restartable(venue, sandbox, tmp_path, action, *, settings, init):
    expert = _expert(
        venue,
        sandbox,
        storage_url=f"sqlite:///{tmp_path / 'state.db'}",
        journal_dir=str(tmp_path / "journal"),
        **settings,
    )
    bars = []

    @expert.on_init(symbol=init.pop("symbol"), timeframe="1m", lookback_bars=5, **init)
    def on_init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, series):
        bars.append(series.last.timestamp)
        if len(bars) == 1:
            getattr(ctx, action)()

    return expert


def _protective(engine):
    return {o.client_order_id: o for o in engine.orders if o.tag in ("stop_loss", "take_profit")}


def _restart(venue, sandbox, tmp_path, *, settings, init):
    first, _ = asyncio.run(
        _run_built(
            _restartable(venue, sandbox, tmp_path, "buy", settings=settings, init=dict(init)),
            sandbox,
            steps=2,
        )
    )
    assert first.engine.errors == []
    bracket = _protective(first.engine)
    assert len(bracket) == 2 and first.engine.portfolio.positions()
    second, (_balance, positions, open_orders) = asyncio.run(
        _run_built(
            _restartable(venue, sandbox, tmp_path, "close", settings=settings, init=dict(init)),
            sandbox,
            steps=2,
        )
    )
    engine = second.engine
    assert engine.errors == []
    restored = _protective(engine)
    assert restored.keys() == bracket.keys()  # the same venue orders, by client id
    assert all(o.status is OrderStatus.CANCELLED for o in restored.values())
    assert [restored[c].stop_price for c in bracket] == pytest.approx(
        [bracket[c].stop_price for c in bracket]
    )
    (close,) = [o for o in engine.orders if o.tag == "close"]
    assert close.status is OrderStatus.FILLED
    ledger = sandbox.ledger()
    statuses = {o["client_order_id"]: o["status"] for o in ledger["orders"]}
    # A spot target beside a venue stop that holds the coin is the engine's own (engine_managed):
    # the venue never saw it, and after the restart the engine holds it again, not the venue.
    at_venue = [c for c in bracket if not bracket[c].engine_managed]
    assert [restored[c].engine_managed for c in bracket] == [
        bracket[c].engine_managed for c in bracket
    ]
    assert [statuses[c] for c in at_venue] == ["CANCELED"] * len(at_venue)
    assert statuses[close.client_order_id] == "FILLED"
    assert len(ledger["orders"]) == 2 + len(
        at_venue
    )  # entry, close, the venue's bracket: once each
    assert positions == [] and open_orders == [] and engine.portfolio.positions() == []
    return engine, ledger, at_venue


def test_live_bybit_inverse_restarted_mid_trade_closes_in_btc_and_matches_the_ledger(tmp_path):
    with _server("bybit", spot_balances={"BTC": 1.0}) as sandbox:
        engine, ledger, at_venue = _restart(
            "bybit",
            sandbox,
            tmp_path,
            settings={
                "market_type": "futures",
                "contract_type": "inverse",
                "margin_mode": "isolated",
                "position_mode": "oneway",
            },
            init={
                "symbol": "BTCUSD",
                "size_type": "fixed_quote",  # 100 USD: 100 contracts of 1 USD
                "size_value": 100,
                "stop_loss_pct": 5.0,
                "take_profit_pct": 10.0,
                "leverage": 2,
            },
        )
    assert len(at_venue) == 2  # a derivative position's stop and target are both at the venue
    (venue_account,) = ledger["accounts"].values()
    wallet = venue_account["markets"]["inverse"]["wallet"]["BTC"]
    assert wallet == _exact(1.0 + sum(f["realized_pnl"] - f["commission"] for f in ledger["fills"]))
    assert engine.portfolio.account.currency == "BTC"
    assert engine.portfolio.account.balance == _exact(wallet)


def test_live_okx_spot_restarted_mid_trade_sells_what_it_holds_and_matches_the_ledger(tmp_path):
    with _server("okx", spot_balances={"USDT": 100_000.0}) as sandbox:
        engine, ledger, at_venue = _restart(
            "okx",
            sandbox,
            tmp_path,
            settings={"market_type": "spot"},
            init={
                "symbol": "BTCUSDT",
                "size_type": "fixed_base",
                "size_value": 0.01,
                "stop_loss_pct": 5.0,
                "take_profit_pct": 10.0,
            },
        )
    # Red before: the restart looked the engine's own target up at the venue ("Order does not
    # exist"), and the venue stop's cancel left its coin locked, so the close was refused.
    assert len(at_venue) == 1  # the stop holds the coin; the target is the engine's
    (venue_account,) = ledger["accounts"].values()
    balances = venue_account["spot_balances"]
    assert balances["BTC"] == {"free": _exact(0.0), "locked": _exact(0.0)}  # all sold, no lock
    cash = 100_000.0
    for fill in ledger["fills"]:  # the buy's fee was taken in BTC, the sell's in USDT
        value = fill["price"] * fill["quantity"]
        cash += value if fill["side"] == "SELL" else -value
        cash -= fill["commission"] if fill["commission_asset"] == "USDT" else 0.0
    assert balances["USDT"]["free"] == _exact(cash)
    assert engine.portfolio.account.balance == _exact(cash)
