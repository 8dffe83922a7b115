"""One protocol package per venue, all over the same matching core (``metaexpert.sandbox.core``).

Each venue is the same small set of modules: ``routes`` (REST, one parameterised implementation
for its spot and derivative markets), ``orders`` (request parsing and order payloads),
``payloads`` (market data shapes), ``auth`` (signatures as the venue checks them), ``errors``
(codes, messages, HTTP statuses, and the mapping of the core's refusals), ``streams``
(websockets). ``venue_app`` builds the application of the venue a config names.
"""

from __future__ import annotations

from metaexpert.sandbox.config import SandboxConfig
from metaexpert.sandbox.core.service import VenueApp

VENUES = ("binance", "bybit", "okx")


def venue_app(config: SandboxConfig) -> VenueApp:
    """The aiohttp application of ``config.venue``."""
    if config.venue == "binance":
        from metaexpert.sandbox.venues.binance.routes import SandboxApp

        return SandboxApp(config)
    if config.venue == "bybit":
        from metaexpert.sandbox.venues.bybit.routes import BybitApp

        return BybitApp(config)
    if config.venue == "okx":
        from metaexpert.sandbox.venues.okx.routes import OkxApp

        return OkxApp(config)
    raise ValueError(f"unknown sandbox venue {config.venue!r}; choose one of {', '.join(VENUES)}")
