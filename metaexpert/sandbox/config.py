"""Sandbox configuration, validated once at the edge with pydantic.

Why a separate model: the same settings arrive from the CLI, from tests and from other helpers;
validating them here means the server code can trust every value it reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from metaexpert.core.timeframe import Timeframe

MarketName = Literal["spot", "usdm"]

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class AccountConfig(BaseModel):
    """One API key pair and the balances it starts with.

    ``spot_balances`` are per asset (free amounts); ``futures_balances`` are linear (USD-M)
    wallet balances per margin asset (normally just USDT); ``coin_balances`` the wallets of the
    inverse (coin-margined) markets per coin.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: str = Field(min_length=8)
    secret: str = Field(min_length=8, repr=False)
    passphrase: str = Field(default="sandbox-passphrase", min_length=1, repr=False)  # OKX only
    spot_balances: dict[str, float] = Field(default_factory=lambda: {"USDT": 100_000.0})
    futures_balances: dict[str, float] = Field(default_factory=lambda: {"USDT": 100_000.0})
    coin_balances: dict[str, float] = Field(default_factory=lambda: {"BTC": 10.0, "ETH": 100.0})
    can_trade: bool = True

    @field_validator("spot_balances", "futures_balances", "coin_balances")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for asset, amount in value.items():
            if amount < 0:
                raise ValueError(f"balance of {asset} must be >= 0, got {amount}")
        return {asset.upper(): float(amount) for asset, amount in value.items()}


class SymbolConfig(BaseModel):
    """Trading rules of one symbol (Binance exchangeInfo filters).

    Defaults for BTCUSDT and ETHUSDT mirror the real Binance values; other symbols get
    generic rules unless configured.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: float = Field(gt=0)
    step_size: float = Field(gt=0)
    min_quantity: float = Field(gt=0)
    max_quantity: float = Field(default=9_000.0, gt=0)
    min_notional: float = Field(ge=0)
    min_price: float = Field(default=0.01, gt=0)
    max_price: float = Field(default=4_529_764.0, gt=0)


class SandboxConfig(BaseModel):
    """Everything the sandbox server needs to start.

    ``speed``: 0 replays only when told (``advance``), deterministic for tests; a positive value
    replays candles and ticks at that multiple of real time (1.0 = real time, 60.0 = one 1m bar
    per second).

    ``fill_volume_fraction``: None (default) fills any size at once; a fraction lets one replayed
    bar fill at most that share of its recorded volume per order, so large orders fill partially.

    ``inverse_symbols``: coin-margined perpetuals by their candle symbol (``BTCUSDT`` replays as
    Binance COIN-M ``BTCUSD_PERP``, contract size 100 USD; 10 USD for other coins).

    ``option_underlyings``: candle symbols whose options a venue lists (a call and a put at
    three strikes around the starting price, expiring on the last Friday of the month after
    next); premiums are Black-Scholes at ``option_volatility`` (``core/options.py``).

    ``price_source``: "candles" (default) matches orders against the replayed bars; "trades" also
    lets every replayed recorded trade move its market's price and fill what it crosses (needs
    ``tick_replay``; spot orders follow spot trades, futures orders USD-M trades).
    """

    model_config = ConfigDict(extra="forbid")

    venue: Literal["binance", "bybit", "okx"] = "binance"
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65_535)
    data_dir: Path = DEFAULT_DATA_DIR
    timeframe: str = "1m"
    spot_symbols: list[str] = Field(default_factory=lambda: ["BTCUSDT", "ETHUSDT"])
    futures_symbols: list[str] = Field(default_factory=lambda: ["BTCUSDT", "ETHUSDT"])
    start_time_ms: int | None = None
    warmup_bars: int = Field(default=1_000, ge=1)
    speed: float = Field(default=0.0, ge=0.0)
    tick_replay: bool = True
    price_source: Literal["candles", "trades"] = "candles"
    spread_bps: float = Field(default=0.0, ge=0.0, le=1_000.0)
    spot_maker_fee: float = Field(default=0.001, ge=0.0, le=0.1)
    spot_taker_fee: float = Field(default=0.001, ge=0.0, le=0.1)
    futures_maker_fee: float = Field(default=0.0002, ge=0.0, le=0.1)
    futures_taker_fee: float = Field(default=0.0005, ge=0.0, le=0.1)
    default_leverage: int = Field(default=20, ge=1, le=125)
    max_leverage: int = Field(default=125, ge=1, le=125)
    maintenance_margin_rate: float = Field(default=0.004, gt=0.0, lt=1.0)
    funding_rate: float = Field(default=0.0001, ge=-0.03, le=0.03)
    recv_window_max_ms: int = Field(default=60_000, ge=1)
    accounts: list[AccountConfig] = Field(
        default_factory=lambda: [AccountConfig(api_key="sandbox-key", secret="sandbox-secret")]
    )
    symbol_rules: list[SymbolConfig] = Field(default_factory=list)
    admin_token: str | None = Field(default=None, repr=False)
    seed: int = 0
    fill_volume_fraction: float | None = Field(default=None, gt=0.0, le=1.0)
    inverse_symbols: list[str] = Field(default_factory=list)
    option_underlyings: list[str] = Field(default_factory=list)
    option_volatility: float = Field(default=0.6, gt=0.0, le=5.0)

    @field_validator("timeframe")
    @classmethod
    def _valid_timeframe(cls, value: str) -> str:
        parsed = Timeframe.parse(value)
        if parsed.is_calendar:
            raise ValueError("the replay timeframe must have a fixed length (not months)")
        return str(parsed)

    @field_validator("spot_symbols", "futures_symbols", "inverse_symbols")
    @classmethod
    def _upper_symbols(cls, value: list[str]) -> list[str]:
        cleaned = [symbol.replace("/", "").upper() for symbol in value]
        if len(set(cleaned)) != len(cleaned):
            raise ValueError(f"duplicate symbols in {value}")
        return cleaned

    @model_validator(mode="after")
    def _check(self) -> SandboxConfig:
        keys = [account.api_key for account in self.accounts]
        if len(set(keys)) != len(keys):
            raise ValueError("two accounts share the same api_key")
        if not self.spot_symbols and not self.futures_symbols:
            raise ValueError("configure at least one spot or futures symbol")
        if self.price_source == "trades" and not self.tick_replay:
            raise ValueError("price_source='trades' needs tick_replay=True")
        if not self.data_dir.is_dir():
            raise ValueError(f"data_dir {self.data_dir} is not a directory")
        return self
