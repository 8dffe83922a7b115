"""Library and expert logs in the Prefect run logs.

The engine, gateways and the expert's own ``ctx.log`` write to loggers under ``metaexpert``
(``metaexpert.runtime``, ``metaexpert.expert.<strategy>`` ...). Prefect sends only its own
loggers to the API unless told (``PREFECT_LOGGING_EXTRA_LOGGERS``, read once when Prefect
sets up logging, so too late for a worker that was started without it). ``route_library_logs``
attaches Prefect's API handler to the ``metaexpert`` logger itself: inside a flow or task run
each record is shown in that run's logs; outside a run the handler drops it.
"""

from __future__ import annotations

import logging

LIBRARY_LOGGER = "metaexpert"


def route_library_logs(level: int = logging.INFO) -> logging.Handler:
    """Idempotent: one ``APILogHandler`` on the ``metaexpert`` logger, at ``level`` or below."""
    from prefect.logging.handlers import APILogHandler

    logger = logging.getLogger(LIBRARY_LOGGER)
    for handler in logger.handlers:
        if isinstance(handler, APILogHandler):
            return handler
    handler = APILogHandler()
    handler.setLevel(level)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    return handler
