"""One protocol package per venue, all over the same matching core (``metaexpert.sandbox.core``).

Each venue is the same small set of modules: ``routes`` (REST, one parameterised implementation
for its spot and derivative markets), ``orders`` (request parsing and order payloads),
``payloads`` (market data shapes), ``auth`` (signatures as the venue checks them), ``errors``
(codes, messages, HTTP statuses, and the mapping of the core's refusals), ``streams``
(websockets). ``venue_app`` builds the application of the venue a config names.
"""

from __future__ import annotations

from typing import Any

from metaexpert.sandbox.config import SandboxConfig
from metaexpert.sandbox.core.service import VenueApp

VENUES = ("binance", "bybit", "okx")


def _app_class(venue: str) -> type[VenueApp]:
    if venue == "binance":
        from metaexpert.sandbox.venues.binance.routes import SandboxApp

        return SandboxApp
    if venue == "bybit":
        from metaexpert.sandbox.venues.bybit.routes import BybitApp

        return BybitApp
    if venue == "okx":
        from metaexpert.sandbox.venues.okx.routes import OkxApp

        return OkxApp
    raise ValueError(f"unknown sandbox venue {venue!r}; choose one of {', '.join(VENUES)}")


def venue_app(config: SandboxConfig) -> VenueApp:
    """The aiohttp application of ``config.venue``."""
    return _app_class(config.venue)(config)


def client_urls(venue: str, base_url: str) -> dict[str, Any]:
    """The entries of ccxt's ``urls['api']`` (``ws`` included) that point a ``venue`` client at
    the sandbox serving ``base_url`` (``http://host:port``), without asking the sandbox."""
    http = base_url.rstrip("/")
    return _app_class(venue).urls(http, "ws" + http[len("http") :])
