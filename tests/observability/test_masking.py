"""Secret masking outside logging: text, values, patterns."""

from __future__ import annotations

import logging

import pytest

from metaexpert.observability.masking import (
    MASK,
    SecretMasker,
    clear_secrets,
    mask_text,
    mask_value,
    register_secret,
    registered_secret_count,
    unregister_secret,
)


@pytest.fixture(autouse=True)
def _clean_secrets():
    clear_secrets()
    yield
    clear_secrets()


def test_mask_text_with_registered_secret_replaces_every_occurrence():
    register_secret("abcd-1234-secret")
    text = mask_text("key abcd-1234-secret then abcd-1234-secret again")
    assert text == f"key {MASK} then {MASK} again"


def test_mask_text_with_nested_secrets_masks_the_longest_whole():
    register_secret("short-secret")
    register_secret("short-secret-and-more")
    assert mask_text("x short-secret-and-more y") == f"x {MASK} y"


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("GET /api?symbol=BTCUSDT&timestamp=1&signature=9f8e7d6c5b", "9f8e7d6c5b"),
        ("X-MBX-APIKEY: kkkkeeeeyyyy", "kkkkeeeeyyyy"),
        ("{'apiKey': 'AK-123456', 'secret': 'SK-987654'}", "AK-123456"),
        ("{'apiKey': 'AK-123456', 'secret': 'SK-987654'}", "SK-987654"),
        ('{"password": "hunter22", "uid": "7"}', "hunter22"),
        ("Authorization: Bearer eyJhbGciOi.payload", "eyJhbGciOi"),
        ("OK-ACCESS-PASSPHRASE=myphrase99", "myphrase99"),
        ("api_key=plainvalue77 and more", "plainvalue77"),
    ],
)
def test_mask_text_with_credential_pattern_hides_value(text, leaked):
    masked = mask_text(text)
    assert leaked not in masked
    assert MASK in masked


def test_mask_text_with_ordinary_text_leaves_it_intact():
    text = "signal: buy BTCUSDT at 42000; tokens=3 symbol=ETHUSDT sizes=[1, 2]"
    assert mask_text(text) == text


def test_mask_value_with_nested_mapping_masks_sensitive_keys_without_mutating():
    register_secret("registered-value-1")
    original = {
        "apiKey": "AK",
        "nested": {"secret": "S", "note": "has registered-value-1"},
        "list": ["registered-value-1", 3],
        "empty_secret": None,
    }
    masked = mask_value(original)
    assert masked == {
        "apiKey": MASK,
        "nested": {"secret": MASK, "note": f"has {MASK}"},
        "list": [MASK, 3],
        "empty_secret": None,
    }
    assert original["apiKey"] == "AK"


def test_register_secret_with_short_value_raises_clear_error():
    with pytest.raises(ValueError, match="shorter than"):
        register_secret("abc")


def test_register_secret_with_none_or_empty_is_ignored():
    register_secret(None)
    register_secret("   ")
    assert registered_secret_count() == 0


def test_unregister_secret_with_registered_value_stops_masking():
    register_secret("rotated-key-0001")
    unregister_secret("rotated-key-0001")
    assert mask_text("rotated-key-0001") == "rotated-key-0001"


def test_secret_masker_with_args_and_exception_masks_record():
    register_secret("filter-secret-xyz")
    try:
        raise RuntimeError("boom filter-secret-xyz")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "metaexpert",
            logging.ERROR,
            __file__,
            1,
            "value %s",
            ("filter-secret-xyz",),
            sys.exc_info(),
        )
    record.api_key = "extra-field-key"
    assert SecretMasker().filter(record)
    formatted = logging.Formatter().format(record)
    assert "filter-secret-xyz" not in formatted
    assert "RuntimeError" in formatted
    assert record.api_key == MASK
