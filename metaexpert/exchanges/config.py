"""``ExchangeConfig``: everything a gateway needs, validated once at the edge.

Invalid combinations fail here, before any connection is opened, with a message that
names the field and the reason: a contract type on spot, options where the venue has none,
live trading without keys, OKX live trading without its passphrase, testnet and demo at
once. ``repr()`` never shows the credentials (they are ``SecretStr``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from metaexpert.core.enums import (
    ContractType,
    Exchange,
    MarginMode,
    MarketType,
    PositionMode,
    TradeMode,
)
from metaexpert.core.errors import ConfigurationError

# Which contract types each venue offers per derivative market type (as ccxt exposes them).
# Binance options are USDT-settled European options (eapi); Bybit options settle in USDC/USDT;
# OKX options are coin-margined (BTC-USD-..., settled in the coin).
SUPPORTED_CONTRACTS: dict[Exchange, dict[MarketType, frozenset[ContractType]]] = {
    Exchange.BINANCE: {
        MarketType.FUTURES: frozenset({ContractType.LINEAR, ContractType.INVERSE}),
        MarketType.OPTIONS: frozenset({ContractType.LINEAR}),
    },
    Exchange.BYBIT: {
        MarketType.FUTURES: frozenset({ContractType.LINEAR, ContractType.INVERSE}),
        MarketType.OPTIONS: frozenset({ContractType.LINEAR}),
    },
    Exchange.OKX: {
        MarketType.FUTURES: frozenset({ContractType.LINEAR, ContractType.INVERSE}),
        MarketType.OPTIONS: frozenset({ContractType.INVERSE}),
    },
}
DEFAULT_OPTION_CONTRACT: dict[Exchange, ContractType] = {
    Exchange.BINANCE: ContractType.LINEAR,
    Exchange.BYBIT: ContractType.LINEAR,
    Exchange.OKX: ContractType.INVERSE,
}
DEMO_TRADING_VENUES = frozenset({Exchange.BINANCE, Exchange.BYBIT})


def _secret(value: SecretStr | str | None) -> str | None:
    if value is None:
        return None
    text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return text or None


class ExchangeConfig(BaseModel):
    """Connection and market settings for one exchange account."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    exchange: Exchange
    market_type: MarketType = MarketType.SPOT
    contract_type: ContractType | None = None
    margin_mode: MarginMode | None = None
    position_mode: PositionMode = PositionMode.ONEWAY
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    api_passphrase: SecretStr | None = None
    subaccount: str | None = None
    base_url: str | None = Field(default=None, description="REST base URL override (local sandbox)")
    websocket_urls: dict[str, Any] | str | None = Field(
        default=None,
        description="entries merged into ccxt's urls['api']['ws'] (a local sandbox's websocket "
        "URLs), or one URL where the venue has one (OKX: ws://host:port/ws/v5)",
    )
    testnet: bool = False
    demo: bool = False
    proxy: str | None = None
    rate_limit_per_minute: int = Field(default=1200, gt=0, le=100_000)
    timeout_ms: int = Field(default=10_000, ge=100, le=300_000)
    trade_mode: TradeMode = TradeMode.PAPER
    order_queue_path: Path | None = Field(
        default=None,
        description="SQLite journal of order operations the venue could not take yet (live); "
        "the gateway replays it, the live broker on every poll",
    )

    @model_validator(mode="before")
    @classmethod
    def _live_credentials(cls, values: Any) -> Any:
        """Live trading takes the keys from the environment (``METAEXPERT_<EXCHANGE>_API_KEY`` /
        ``_API_SECRET`` / ``_API_PASSPHRASE``) or else the encrypted secrets file
        (``metaexpert secrets set``) when none are given, so every live path (facade, CLI,
        Prefect flow, supervisor) finds them the same way; the environment wins over the file."""
        if (
            not isinstance(values, dict)
            or str(values.get("trade_mode") or "").lower() != TradeMode.LIVE.value
        ):
            return values
        if _secret(values.get("api_key")) or not values.get("exchange"):
            return values
        from metaexpert.exchanges.credentials import (
            load_credentials,  # credentials imports this module
        )

        found = load_credentials(
            str(values["exchange"]).strip().lower(), subaccount=values.get("subaccount")
        )
        if found is None:
            return values
        filled = {
            key: value for key, value in found.as_config_values().items() if value is not None
        }
        return {**values, **filled}

    @field_validator("exchange", mode="before")
    @classmethod
    def _known_exchange(cls, value: Any) -> Any:
        if isinstance(value, str) and not isinstance(value, Exchange):
            normalised = value.strip().lower()
            if normalised not in {member.value for member in Exchange}:
                supported = ", ".join(member.value for member in Exchange)
                raise ValueError(f"unknown exchange {value!r}: supported are {supported}")
            return normalised
        return value

    @field_validator("websocket_urls")
    @classmethod
    def _websocket_shape(cls, value: dict[str, Any] | str | None) -> dict[str, Any] | str | None:
        def check(item: Any, where: str) -> None:
            if isinstance(item, dict):
                for key, inner in item.items():
                    check(inner, f"{where}.{key}")
            elif not (isinstance(item, str) and item.startswith(("ws://", "wss://"))):
                raise ValueError(f"websocket_urls{where} = {item!r} is not a ws:// or wss:// URL")

        if value:
            check(value, "")
        return value or None

    @field_validator("base_url", "proxy")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if "://" not in value:
            raise ValueError(f"{value!r} is not a URL: expected a scheme such as http:// or ws://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _coherent(self) -> ExchangeConfig:
        venue = self.exchange
        if self.market_type is MarketType.SPOT:
            if self.contract_type is not None:
                raise ValueError(
                    f"contract_type={self.contract_type} does not apply to spot markets: "
                    "remove it or set market_type='futures'"
                )
            if self.position_mode is PositionMode.HEDGE:
                raise ValueError(
                    "position_mode='hedge' needs market_type='futures' (spot has no positions)"
                )
            if self.margin_mode is not None:
                raise ValueError("margin_mode applies to futures and options, not to spot")
        else:
            offered = SUPPORTED_CONTRACTS[venue].get(self.market_type, frozenset())
            contract = self.contract_type
            if contract is None:
                contract = (
                    DEFAULT_OPTION_CONTRACT[venue]
                    if self.market_type is MarketType.OPTIONS
                    else ContractType.LINEAR
                )
                object.__setattr__(self, "contract_type", contract)
            if contract not in offered:
                available = ", ".join(sorted(offered)) or "none"
                raise ValueError(
                    f"{venue} has no {contract} {self.market_type} (available: {available})"
                )
            if self.margin_mode is None:
                object.__setattr__(self, "margin_mode", MarginMode.ISOLATED)
        if self.testnet and self.demo:
            raise ValueError(
                "testnet and demo cannot be combined: ccxt switches to one or the other"
            )
        if self.demo and venue not in DEMO_TRADING_VENUES:
            raise ValueError(
                f"{venue} has no demo trading mode; use testnet=True (simulated trading)"
            )
        if self.trade_mode is TradeMode.BACKTEST:
            raise ValueError(
                "trade_mode='backtest' needs no exchange gateway: use 'paper' or 'live'"
            )
        if self.trade_mode is TradeMode.LIVE:
            missing = [
                name
                for name, value in (("api_key", self.api_key), ("api_secret", self.api_secret))
                if _secret(value) is None
            ]
            if missing:
                raise ValueError(
                    f"live trading on {venue} needs {' and '.join(missing)}: set "
                    f"METAEXPERT_{venue.upper()}_API_KEY / _API_SECRET or an encrypted credentials file"
                )
            if venue is Exchange.OKX and _secret(self.api_passphrase) is None:
                raise ValueError(
                    "live trading on okx needs api_passphrase (the passphrase chosen when the "
                    "OKX API key was created): set METAEXPERT_OKX_API_PASSPHRASE"
                )
        return self

    # ------------------------------------------------------------------ helpers
    @classmethod
    def parse(cls, **values: Any) -> ExchangeConfig:
        """Validate ``values``; raise ``ConfigurationError`` with every problem spelled out."""
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                location = ".".join(str(part) for part in error["loc"]) or "config"
                message = str(error["msg"]).removeprefix("Value error, ")
                problems.append(f"{location}: {message}")
            raise ConfigurationError(
                "invalid exchange configuration: " + "; ".join(problems)
            ) from None

    @property
    def has_credentials(self) -> bool:
        return _secret(self.api_key) is not None and _secret(self.api_secret) is not None

    @property
    def is_derivative(self) -> bool:
        return self.market_type is not MarketType.SPOT

    @property
    def hedged(self) -> bool:
        return self.position_mode is PositionMode.HEDGE

    def secret_values(self) -> list[str]:
        """The raw credential strings, for registration with the redactor (never for logging)."""
        return [
            text
            for text in (
                _secret(self.api_key),
                _secret(self.api_secret),
                _secret(self.api_passphrase),
            )
            if text
        ]
