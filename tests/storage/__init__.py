"""Tests of metaexpert.storage (run against SQLite and PostgreSQL)."""
