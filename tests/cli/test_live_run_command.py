"""``metaexpert run FILE --mode live`` end to end on the loopback Binance USD-M sandbox.

Issue 15: live mode ignored the keys saved with ``metaexpert secrets set`` and the
``METAEXPERT_BINANCE_API_KEY/SECRET`` variables. Here a user's path, command by command: keys
saved with ``secrets set`` (no key in the file or the environment), a first ``run --mode live``
that opens a position and protects it at the venue (a stop and a target on the algo API), and
a second run, with keys from the environment only (no secrets file), that restarts mid-trade
from the database, closes the position and cancels its protection. At the end the database's
orders, position and account equal the sandbox's own ledger exactly. The sandbox is stepped by
nobody (speed 0): the expert trades on ticks, counted in its persisted state.
"""

from __future__ import annotations

import textwrap

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from metaexpert.cli.app import app
from metaexpert.core.enums import OrderStatus
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer
from metaexpert.storage.database import Database
from metaexpert.storage.state_store import StateStore

pytestmark = pytest.mark.network

KEY, SECRET = "cli-live-key-" + "k" * 51, "cli-live-secret-" + "s" * 48

EXPERT = textwrap.dedent("""
    from metaexpert import MetaExpert

    expert = MetaExpert(
        exchange="binance",
        market_type="futures",
        contract_type="linear",
        margin_mode="isolated",
        position_mode="oneway",
        log_to_file=False,
        log_to_console=False,
    )

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1m", lookback_bars=3, size_type="fixed_base",
        size_value=0.002, stop_loss_pct=5.0, take_profit_pct=10.0, leverage=2,
    )
    def init(ctx):
        pass

    @expert.on_tick()
    def tick(ctx, tick):
        ticks = ctx.state["ticks"] = ctx.state.get("ticks", 0) + 1
        if ticks == 1:
            ctx.buy()
        elif ticks == 4 and ctx.position() is not None:
            ctx.close()
""")


@pytest.fixture
def sandbox():
    config = SandboxConfig(
        timeframe="1m",
        spot_symbols=["BTCUSDT"],
        futures_symbols=["BTCUSDT"],
        speed=0.0,
        tick_replay=False,
        accounts=[AccountConfig(api_key=KEY, secret=SECRET, futures_balances={"USDT": 50_000})],
    )
    with SandboxServer(config) as server:
        yield server


def _clear_key_variables(monkeypatch) -> None:
    for name in ("BINANCE", "BYBIT", "OKX"):
        for suffix in ("API_KEY", "API_SECRET", "API_PASSPHRASE"):
            monkeypatch.delenv(f"METAEXPERT_{name}_{suffix}", raising=False)


def _run_live(expert_file, sandbox, steps: int):
    return CliRunner().invoke(
        app,
        [
            "run",
            str(expert_file),
            "--mode",
            "live",
            "--steps",
            str(steps),
            "--poll-interval",
            "0.05",
            "--base-url",
            sandbox.base_url,
        ],
    )


def test_run_live_with_keys_from_secrets_then_environment_restarts_and_matches_the_ledger(
    sandbox, tmp_path, monkeypatch, secret_values
) -> None:
    monkeypatch.chdir(tmp_path)
    _clear_key_variables(monkeypatch)
    secrets_key = Fernet.generate_key().decode()
    secret_values.update({KEY, SECRET, secrets_key})
    monkeypatch.setenv("METAEXPERT_SECRETS_KEY", secrets_key)
    monkeypatch.setenv("METAEXPERT_CREDENTIALS_FILE", str(tmp_path / "credentials.enc"))
    saved = CliRunner().invoke(
        app, ["secrets", "set", "--exchange", "binance", "--stdin"], input=f"{KEY}\n{SECRET}\n"
    )
    assert saved.exit_code == 0, saved.output
    expert_file = tmp_path / "protected_long.py"
    expert_file.write_text(EXPERT)

    first = _run_live(expert_file, sandbox, steps=2)  # keys from the secrets file only
    assert first.exit_code == 0, first.output
    assert "protected_long (live): 3 orders, 1 fills" in first.output
    assert "open long 0.002 BTCUSDT" in first.output
    ledger = sandbox.ledger()
    (position,) = [p for p in ledger["accounts"][KEY]["positions"] if p.get("amount")]
    assert position["amount"] == pytest.approx(0.002)
    assert sorted(o["kind"] for o in ledger["orders"] if o["status"] == "NEW") == [
        "STOP_MARKET",
        "TAKE_PROFIT_MARKET",
    ]

    # The second process: keys from the environment only (the secrets file is gone).
    monkeypatch.setenv("METAEXPERT_CREDENTIALS_FILE", str(tmp_path / "absent.enc"))
    monkeypatch.setenv("METAEXPERT_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("METAEXPERT_BINANCE_API_SECRET", SECRET)
    second = _run_live(expert_file, sandbox, steps=3)
    assert second.exit_code == 0, second.output
    assert "open long" not in second.output
    for output in (saved.output, first.output, second.output):
        assert KEY not in output and SECRET not in output

    ledger = sandbox.ledger()
    venue = {o["client_order_id"]: o for o in ledger["orders"]}
    assert len(venue) == 4  # entry, stop, target, close: nothing placed twice
    assert all(o["status"] in ("FILLED", "CANCELED") for o in venue.values())
    account = ledger["accounts"][KEY]
    assert not [p for p in account["positions"] if p.get("amount")]
    wallet = account["futures_wallet"]["USDT"]
    assert wallet == pytest.approx(
        50_000 + sum(f["realized_pnl"] - f["commission"] for f in ledger["fills"]), abs=1e-9
    )

    database = Database(f"sqlite:///{tmp_path / 'var' / 'metaexpert.sqlite'}")
    store = StateStore(database)
    try:
        expert = store.experts.get(1)  # the only expert of this fresh database
        assert expert is not None and (expert.name, expert.trade_mode) == ("protected_long", "live")
        stored = {cid: store.orders.get(expert.expert_id, cid) for cid in venue}
        statuses = {"FILLED": OrderStatus.FILLED, "CANCELED": OrderStatus.CANCELLED}
        assert {cid: o.status for cid, o in stored.items()} == {
            cid: statuses[o["status"]] for cid, o in venue.items()
        }
        assert sorted(o.tag for o in stored.values()) == ["", "close", "stop_loss", "take_profit"]
        assert (
            store.state.get(expert.expert_id, "ticks") == 5
        )  # two ticks, then three after the restart
        assert store.positions.current(expert.expert_id) == []
        latest = store.accounts.latest(expert.expert_id)
        assert latest is not None
        assert latest.balance == pytest.approx(wallet, abs=1e-9)
        assert latest.equity == pytest.approx(wallet, abs=1e-9)
    finally:
        database.dispose()


def test_run_live_without_keys_anywhere_names_every_place_keys_can_come_from(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _clear_key_variables(monkeypatch)
    monkeypatch.setenv("METAEXPERT_CREDENTIALS_FILE", str(tmp_path / "absent.enc"))
    expert_file = tmp_path / "protected_long.py"
    expert_file.write_text(EXPERT)
    result = CliRunner().invoke(app, ["run", str(expert_file), "--mode", "live", "--steps", "1"])
    assert result.exit_code == 1, result.output
    flat = " ".join(result.output.split())
    assert "METAEXPERT_BINANCE_API_KEY" in flat and "metaexpert secrets set" in flat
