"""``metaexpert sandbox``: run loopback exchanges (Binance, Bybit, OKX) for offline development.

Real ccxt (and ``metaexpert run --base-url``, ``metaexpert stream --sandbox-url``) talks to
them; they replay the recorded candles and ticks and match orders. ``--venue`` may be given
several times: each venue gets its own port (``--venue bybit:8766`` names it; otherwise ports
count up from ``--port``, or are free ones with ``--port 0``). On start each prints what it
replays (symbols, timeframe, date range, speed), its API key and secret, and how to point an
expert at it. Blocks until Ctrl-C / SIGTERM.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from metaexpert.cli.errors import reported_errors
from metaexpert.cli.options import DebugOption
from metaexpert.core.errors import ConfigurationError

__all__ = ["parse_venues", "sandbox_command"]

VENUES = ("binance", "bybit", "okx")


def parse_venues(values: list[str] | None, base_port: int) -> list[tuple[str, int]]:
    """``["bybit:8766", "binance"]`` -> ``[("bybit", 8766), ("binance", base_port)]``."""
    result: list[tuple[str, int]] = []
    next_port = base_port
    for raw in values or ["binance"]:
        name, _, port_text = raw.strip().lower().partition(":")
        if name not in VENUES:
            raise ConfigurationError(f"--venue {raw!r}: the sandbox serves {', '.join(VENUES)}")
        if port_text:
            try:
                port = int(port_text)
            except ValueError as exc:
                raise ConfigurationError(
                    f"--venue {raw!r}: the port after ':' must be a number"
                ) from exc
            if not 0 <= port <= 65_535:
                raise ConfigurationError(f"--venue {raw!r}: port {port} is outside 0-65535")
        else:
            port = next_port
            next_port = next_port + 1 if next_port else 0
        if any(name == other for other, _ in result):
            raise ConfigurationError(f"--venue {name} is given twice")
        if port and any(port == other for _, other in result):
            raise ConfigurationError(
                f"--venue {raw!r}: port {port} is already used by another venue"
            )
        result.append((name, port))
    return result


def _date(ms: object) -> str:
    return datetime.fromtimestamp(int(str(ms)) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def banner(info: dict[str, Any]) -> list[str]:
    """The lines printed for one started sandbox."""
    venue, url = str(info["venue"]), str(info["url"])
    env = venue.upper()
    speed = float(info["speed"])
    pace = "stepped by hand (POST /sandbox/advance)" if speed == 0 else f"{speed:g}x real time"
    lines = [f"{venue} sandbox listening on {url} (websockets {info['ws_url']}; Ctrl-C stops it)"]
    for market, symbols in dict(info["markets"]).items():
        if symbols:
            lines.append(f"  {market:<8} {', '.join(symbols)}")
    lines += [
        (
            f"  replays  {info['timeframe']} candles from {_date(info['start_ms'])} "
            f"(recorded {_date(info['data_first_ms'])} .. {_date(info['data_last_ms'])}), {pace}"
        ),
        f"  ticks    {', '.join(info['tick_recordings']) or 'none (candles only)'}",
        f"  api key  {info['api_key']}",
        f"  secret   {info['secret']}",
        *(
            [f"  passphrase {info['passphrase']}  (OKX demo trading: send x-simulated-trading: 1)"]
            if venue == "okx"
            else []
        ),
        "  point an expert at it:",
        f"    METAEXPERT_{env}_API_KEY={info['api_key']} METAEXPERT_{env}_API_SECRET={info['secret']} \\",
        *(
            [f"    METAEXPERT_{env}_API_PASSPHRASE={info['passphrase']} \\"]
            if venue == "okx"
            else []
        ),
        f'      metaexpert run EXPERT.py --mode live --base-url {url}   (exchange="{venue}" in the expert)',
        f"    metaexpert run EXPERT.py --mode paper --base-url {url}",
    ]
    return lines


def sandbox_command(
    host: Annotated[
        str, typer.Option("--host", help="Interface to bind (keep 127.0.0.1 unless you mean it).")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option("--port", min=0, max=65535, help="Port of the first venue (0: free ports)."),
    ] = 8765,
    venue: Annotated[
        list[str] | None,
        typer.Option("--venue", help="binance, bybit or okx, optionally :PORT (repeatable)."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Recorded market data (candle store root).")
    ] = None,
    speed: Annotated[
        float,
        typer.Option("--speed", min=0.0, help="Market seconds per wall second (0: step by hand)."),
    ] = 60.0,
    timeframe: Annotated[
        str | None, typer.Option("--timeframe", help="Replayed candle timeframe, e.g. 1m or 5m.")
    ] = None,
    start_time_ms: Annotated[
        int | None, typer.Option("--start-time-ms", help="Market time to start at (UTC ms).")
    ] = None,
    symbols: Annotated[
        list[str] | None, typer.Option("--symbol", help="Spot and futures symbol (repeatable).")
    ] = None,
    options: Annotated[
        list[str] | None,
        typer.Option("--options", help="List options on this underlying (Bybit, OKX; repeatable)."),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="API key of the sandbox account.")
    ] = None,
    api_secret: Annotated[
        str | None, typer.Option("--api-secret", help="Its secret (with --api-key).")
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Serve loopback exchanges (REST + websockets) until interrupted."""
    from metaexpert.sandbox import AccountConfig, SandboxConfig, describe, run_sandboxes

    console = Console(highlight=False)
    with reported_errors(debug=debug):
        overrides: dict[str, object] = {"host": host, "speed": speed}
        if data_dir is not None:
            overrides["data_dir"] = data_dir
        if timeframe:
            overrides["timeframe"] = timeframe
        if start_time_ms is not None:
            overrides["start_time_ms"] = start_time_ms
        if symbols:
            overrides["spot_symbols"] = list(symbols)
            overrides["futures_symbols"] = list(symbols)
        if options:
            overrides["option_underlyings"] = [name.replace("/", "").upper() for name in options]
        if (api_key is None) != (api_secret is None):
            raise ConfigurationError("--api-key and --api-secret go together")
        if api_key is not None:
            try:
                overrides["accounts"] = [AccountConfig(api_key=api_key, secret=str(api_secret))]
            except ValueError as exc:
                raise ConfigurationError(f"--api-key/--api-secret: {exc}") from exc
        configs = []
        for name, venue_port in parse_venues(venue, port):
            try:
                configs.append(SandboxConfig(venue=name, port=venue_port, **overrides))  # type: ignore[arg-type]
            except ValueError as exc:
                raise ConfigurationError(f"sandbox settings for {name}: {exc}") from exc

        def ready(server: Any) -> None:
            for line in banner(describe(server)):
                console.print(line, soft_wrap=True)

        run_sandboxes(configs, on_ready=ready)
