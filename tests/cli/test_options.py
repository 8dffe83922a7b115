"""Command-line value parsing: parameters, dates, data folder, output folder."""

from __future__ import annotations

import datetime as dt

import pytest
import typer

from metaexpert.cli.options import (
    DATA_DIR_ENVIRONMENT_VARIABLE,
    check_date_range,
    default_output_dir,
    parse_date,
    parse_parameters,
    resolve_data_dir,
)


def test_parse_parameters_with_mixed_values_types_them():
    parsed = parse_parameters(
        [
            "fast=10",
            "ratio=0.5",
            "use_filter=true",
            "off=False",
            "name=momentum",
            "levels=[1, 2]",
            "nothing=none",
            "text=a=b",
        ]
    )
    assert parsed == {
        "fast": 10,
        "ratio": 0.5,
        "use_filter": True,
        "off": False,
        "name": "momentum",
        "levels": [1, 2],
        "nothing": None,
        "text": "a=b",
    }


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("fast", "must look like key=value"),
        ("1fast=2", "not a valid parameter name"),
        ("=3", "not a valid parameter name"),
    ],
)
def test_parse_parameters_with_bad_item_raises_bad_parameter(item, message):
    with pytest.raises(typer.BadParameter, match=message):
        parse_parameters([item])


def test_parse_parameters_with_duplicate_key_raises_bad_parameter():
    with pytest.raises(typer.BadParameter, match="given twice"):
        parse_parameters(["a=1", "a=2"])


@pytest.mark.parametrize("value", ["2024/01/01", "24-01-01", "2024-13-01", "2024-02-30", "x"])
def test_parse_date_with_bad_value_raises_bad_parameter(value):
    with pytest.raises(typer.BadParameter):
        parse_date(value, "--start")


def test_check_date_range_with_reversed_dates_raises_bad_parameter():
    with pytest.raises(typer.BadParameter, match="must be before"):
        check_date_range("2024-02-01", "2024-01-01")


def test_resolve_data_dir_with_option_env_and_fallback_prefers_in_order(tmp_path, monkeypatch):
    option, environment, fallback = (tmp_path / n for n in ("option", "env", "fallback"))
    for folder in (option, environment, fallback):
        folder.mkdir()
    monkeypatch.setenv(DATA_DIR_ENVIRONMENT_VARIABLE, str(environment))
    assert resolve_data_dir(option, fallback=fallback) == option.resolve()
    assert resolve_data_dir(None, fallback=fallback) == environment.resolve()
    monkeypatch.delenv(DATA_DIR_ENVIRONMENT_VARIABLE)
    assert resolve_data_dir(None, fallback=fallback) == fallback.resolve()
    assert resolve_data_dir(None, fallback=tmp_path / "absent") is None


def test_resolve_data_dir_with_missing_folder_raises_bad_parameter(tmp_path, monkeypatch):
    with pytest.raises(typer.BadParameter, match="data folder not found"):
        resolve_data_dir(tmp_path / "absent")
    monkeypatch.setenv(DATA_DIR_ENVIRONMENT_VARIABLE, str(tmp_path / "gone"))
    with pytest.raises(typer.BadParameter, match=DATA_DIR_ENVIRONMENT_VARIABLE):
        resolve_data_dir(None)


def test_default_output_dir_with_existing_folder_picks_a_new_one(tmp_path):
    moment = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    first = default_output_dir("ema", now=moment, base=tmp_path)
    assert first.name == "ema-20240506T070809Z"
    first.mkdir()
    second = default_output_dir("ema", now=moment, base=tmp_path)
    assert second.name == "ema-20240506T070809Z-2"
