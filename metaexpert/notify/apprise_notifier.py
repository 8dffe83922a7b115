"""Alerts through Apprise: one notifier behind the core ``Notifier`` protocol.

Routing: the plain ``urls`` receive every alert; targets from the Apprise config file
receive the alerts whose tags they carry (``tags=("orders",)``), or every alert when the
alert has no tags.

Delivery failures never raise into trading code: ``notify`` returns False, logs the
failure (with secrets masked by the logging setup) and counts it, so a dead chat service
cannot stop an expert. Every alert is also kept in ``history`` for reports and tests.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

import apprise

from metaexpert.core.clock import now_ms
from metaexpert.notify.config import LEVELS, NotificationConfig

logger = logging.getLogger("metaexpert.notify")

_TYPES = {
    "info": apprise.NotifyType.INFO,
    "success": apprise.NotifyType.SUCCESS,
    "warning": apprise.NotifyType.WARNING,
    "failure": apprise.NotifyType.FAILURE,
}


@dataclass(slots=True)
class SentAlert:
    timestamp: int
    level: str
    title: str
    body: str
    tags: tuple[str, ...]
    delivered: bool


class AppriseNotifier:
    def __init__(
        self, config: NotificationConfig | None = None, *, history_size: int = 1000
    ) -> None:
        self.config = config or NotificationConfig()
        self._everything = apprise.Apprise()
        for url in self.config.urls:
            if not self._everything.add(url):
                raise ValueError(
                    f"Apprise does not understand the notification URL scheme of {url.split('://')[0]!r}://..."
                )
        self._routed = apprise.Apprise()
        if self.config.config_file is not None:
            source = apprise.AppriseConfig()
            source.add(str(self.config.config_file))
            self._routed.add(source)
        self._minimum = LEVELS.index(self.config.min_level)
        self._lock = threading.Lock()
        self.history: deque[SentAlert] = deque(maxlen=history_size)
        self.failures = 0

    @property
    def configured(self) -> bool:
        return len(self._everything) > 0 or len(self._routed) > 0

    def notify(
        self, title: str, body: str, *, level: str = "info", tags: tuple[str, ...] = ()
    ) -> bool:
        """Send an alert to every configured target; False if none took it."""
        level = level.lower() if level.lower() in _TYPES else "warning"
        if LEVELS.index(level) < self._minimum:
            return False
        full_title = f"{self.config.title_prefix}: {title}" if self.config.title_prefix else title
        delivered = False
        if self.configured:
            kind = _TYPES[level]
            with self._lock:
                if len(self._everything):
                    delivered = bool(
                        self._everything.notify(body=body, title=full_title, notify_type=kind)
                    )
                if len(self._routed):
                    routed = self._routed.notify(
                        body=body,
                        title=full_title,
                        notify_type=kind,
                        tag=list(tags) if tags else apprise.common.MATCH_ALL_TAG,
                    )
                    delivered = bool(routed) or delivered
            if not delivered:
                self.failures += 1
                logger.warning("alert %r could not be delivered", title)
        self.history.append(SentAlert(now_ms(), level, full_title, body, tuple(tags), delivered))
        return delivered
