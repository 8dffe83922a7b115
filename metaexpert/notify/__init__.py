"""Alerts: Apprise delivery behind ``metaexpert.core.portfolio.Notifier``."""

from metaexpert.notify.apprise_notifier import AppriseNotifier, SentAlert
from metaexpert.notify.config import LEVELS, NotificationConfig

__all__ = ["LEVELS", "AppriseNotifier", "NotificationConfig", "SentAlert"]
