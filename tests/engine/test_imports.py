"""What importing the library and building a backtest-only expert loads (checked in a fresh interpreter).

A backtest needs numpy, polars and pydantic. It does not need ccxt (about 1.2 s and 400
modules to import, only paper and live trading talk to an exchange), Prefect (the pipelines
sit above the library), SQLAlchemy (a plain backtest stores nothing) or pandera and pandas
(only writing candles validates them). Each of these is imported where it is used.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("ccxt", "prefect", "sqlalchemy", "alembic", "pandera", "pandas", "aiohttp")

_PROGRAM = """
import json, sys
import metaexpert
from metaexpert import MetaExpert
expert = MetaExpert(exchange="binance", market_type="futures", contract_type="linear", log_to_file=False,
                    log_to_console=False)
after_constructor = sorted(name for name in {heavy!r} if name in sys.modules)
@expert.on_init(symbol="BTCUSDT", timeframe="1h", lookback_bars=0)
def init(ctx):
    pass
@expert.on_bar("1h")
def bar(ctx, bars):
    if ctx.position() is None:
        ctx.buy(0.01)
result = expert.run("backtest", backtest_start="2024-01-01", backtest_end="2024-01-03", report=False,
                    configure_logs=False, data_dir={data!r}, simulation={{"funding": "none"}})
after_backtest = sorted(name for name in {heavy!r} if name in sys.modules)
print(json.dumps({{"constructor": after_constructor, "backtest": after_backtest, "bars": result.bars_processed}}))
"""


def _loaded(data_dir: Path) -> dict:
    program = _PROGRAM.format(heavy=HEAVY, data=str(data_dir))
    completed = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_import_and_backtest_only_expert_with_default_settings_load_no_ccxt_prefect_sqlalchemy_or_pandera(
    candle_store,
):
    rows = [(1_704_067_200_000 + i * 3_600_000, 100.0, 101.0, 99.0, 100.5, 5.0) for i in range(48)]
    loaded = _loaded(candle_store(rows))
    assert loaded["constructor"] == []
    assert loaded["backtest"] == []
    assert loaded["bars"] == 48
