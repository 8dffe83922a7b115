from __future__ import annotations

import pytest

from metaexpert.core.portfolio import Notifier
from metaexpert.notify import AppriseNotifier, NotificationConfig


def test_notifier_with_json_endpoint_delivers_title_body_and_type(alert_inbox):
    notifier = AppriseNotifier(NotificationConfig(urls=[alert_inbox.url], title_prefix="bot-1"))

    assert notifier.notify("Risk halt", "max drawdown 20% reached", level="failure") is True

    assert alert_inbox.paths == ["/alerts"]
    payload = alert_inbox.received[0]
    assert payload["title"] == "bot-1: Risk halt"
    assert payload["message"] == "max drawdown 20% reached"
    assert payload["type"] == "failure"
    assert notifier.history[-1].delivered is True


def test_notifier_with_level_below_minimum_sends_nothing(alert_inbox):
    notifier = AppriseNotifier(NotificationConfig(urls=[alert_inbox.url], min_level="warning"))

    assert notifier.notify("daily summary", "ok", level="info") is False
    assert notifier.notify("breaker open", "BTCUSDT moved 6%", level="warning") is True

    assert [p["title"] for p in alert_inbox.received] == ["MetaExpert: breaker open"]


def test_notifier_with_unreachable_endpoint_returns_false_without_raising():
    notifier = AppriseNotifier(
        NotificationConfig(urls=["json://127.0.0.1:9/nothing-listens"], timeout_seconds=2)
    )

    assert notifier.notify("order rejected", "insufficient margin", level="warning") is False
    assert notifier.failures == 1
    assert notifier.history[-1].delivered is False


def test_notifier_with_config_file_and_tags_routes_by_tag(alert_inbox, tmp_path):
    config = tmp_path / "apprise.yml"
    config.write_text(f"version: 1\nurls:\n  - {alert_inbox.url}:\n      tag: ops\n")
    notifier = AppriseNotifier(NotificationConfig(config_file=config))

    assert notifier.notify("to trading desk", "not for ops", tags=("desk",)) is False
    assert notifier.notify("to ops", "for ops", tags=("ops",)) is True
    assert [p["message"] for p in alert_inbox.received] == ["for ops"]


def test_notification_config_with_bad_values_names_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown alert level 'loud'"):
        NotificationConfig(min_level="loud")
    with pytest.raises(ValueError, match="does not exist"):
        NotificationConfig(config_file=tmp_path / "missing.yml")
    with pytest.raises(ValueError, match="does not understand"):
        AppriseNotifier(NotificationConfig(urls=["nosuchscheme://x"]))


def test_apprise_notifier_satisfies_core_notifier_protocol():
    assert isinstance(AppriseNotifier(), Notifier)


def test_notifier_with_plain_url_and_tagged_alert_still_delivers(alert_inbox):
    notifier = AppriseNotifier(NotificationConfig(urls=[alert_inbox.url]))

    assert (
        notifier.notify("Order rejected", "insufficient margin", level="warning", tags=("orders",))
        is True
    )
    assert [p["title"] for p in alert_inbox.received] == ["MetaExpert: Order rejected"]
