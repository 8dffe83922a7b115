"""The end-of-session artefact scan finds a planted secret and ignores clean files."""

from __future__ import annotations

from tests.conftest import scan_for_secrets


def test_scan_for_secrets_with_planted_value_reports_file_masked(tmp_path):
    planted = "planted-" + "z" * 24  # deliberately not registered: the session scan must not see it
    leaky, clean, binary = tmp_path / "leaky.log", tmp_path / "clean.log", tmp_path / "data.bin"
    leaky.write_text(f"request failed with key {planted}\n")
    clean.write_text("request failed with key ***\n")
    binary.write_bytes(b"\x00\x01" * 1000)
    hits = scan_for_secrets([leaky, clean, binary], {planted, "short"})
    assert [path for path, _ in hits] == [leaky]
    assert planted not in hits[0][1] and hits[0][1].startswith("pla***")
    leaky.unlink()


def test_scan_for_secrets_with_only_short_values_finds_nothing(tmp_path):
    path = tmp_path / "text.log"
    path.write_text("abc abc abc")
    assert scan_for_secrets([path], {"abc"}) == []
