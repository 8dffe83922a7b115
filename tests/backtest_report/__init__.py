"""Tests of backtest metrics and reports."""
