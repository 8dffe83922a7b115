"""``metaexpert keys`` / ``export`` / ``import``: ownership is the owner's private key, not a typed name."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from metaexpert.cli.app import app

EXPERT = Path(__file__).resolve().parents[1] / "research" / "experts" / "cycle_timer.py"


@pytest.fixture
def folders(runner, tmp_path, monkeypatch):
    """Alice's and Bob's key folders, each with their own key; Bob trusts Alice's public key."""
    monkeypatch.delenv("METAEXPERT_KEYS_DIR", raising=False)
    alice, bob = tmp_path / "alice-keys", tmp_path / "bob-keys"
    for name, folder in (("alice", alice), ("bob", bob)):
        result = runner.invoke(app, ["keys", "generate", name, "--keys-dir", str(folder)])
        assert result.exit_code == 0, result.output
        assert "fingerprint: SHA256:" in result.output
    assert (alice / "alice.key").stat().st_mode & 0o077 == 0, (
        "the private key is readable by its owner only"
    )
    trusted = runner.invoke(
        app, ["keys", "trust", str(alice / "alice.pub"), "--keys-dir", str(bob)]
    )
    assert trusted.exit_code == 0, trusted.output
    return {"alice": alice, "bob": bob, "root": tmp_path}


def _export(runner, folders, permission: str) -> Path:
    output = folders["root"] / "packages"
    result = runner.invoke(
        app,
        [
            "export",
            str(EXPERT),
            "--version",
            "1.0.0",
            "--owner",
            "alice",
            "--permission",
            permission,
            "--keys-dir",
            str(folders["alice"]),
            "--output",
            str(output),
        ],
    )
    assert result.exit_code == 0, result.output
    return output / "cycle_timer-1.0.0.zip"


def test_import_of_private_package_as_owner_by_name_only_is_refused(runner, folders):
    package = _export(runner, folders, "private")
    target = folders["root"] / "stolen"
    # The old way to claim ownership: type the owner's name.
    typed = runner.invoke(
        app, ["import", str(package), "--user", "alice", "--copy", "--target", str(target)]
    )
    assert typed.exit_code != 0
    # Bob holds only his own key: claiming alice with it fails (there is no alice.key in his folder).
    claimed = runner.invoke(
        app,
        [
            "import",
            str(package),
            "--as",
            "alice",
            "--keys-dir",
            str(folders["bob"]),
            "--copy",
            "--target",
            str(target),
        ],
    )
    assert claimed.exit_code == 1 and "cannot read key" in claimed.output
    own_key = runner.invoke(
        app,
        [
            "import",
            str(package),
            "--as",
            "bob",
            "--keys-dir",
            str(folders["bob"]),
            "--copy",
            "--target",
            str(target),
        ],
    )
    assert (
        own_key.exit_code == 1
        and "is private: only the holder of its owner's key" in own_key.output
    )
    assert not target.exists()
    owner = runner.invoke(
        app,
        [
            "import",
            str(package),
            "--as",
            "alice",
            "--keys-dir",
            str(folders["alice"]),
            "--copy",
            "--target",
            str(folders["root"] / "mine"),
        ],
    )
    assert owner.exit_code == 0, owner.output


def test_import_of_forged_package_claiming_a_trusted_owner_is_refused(runner, folders):
    mallory = folders["root"] / "mallory-keys"
    assert (
        runner.invoke(app, ["keys", "generate", "mallory", "--keys-dir", str(mallory)]).exit_code
        == 0
    )
    output = folders["root"] / "forged"
    forged = runner.invoke(
        app,
        [
            "export",
            str(EXPERT),
            "--version",
            "1.0.0",
            "--owner",
            "alice",
            "--key",
            str(mallory / "mallory.key"),
            "--permission",
            "copy_allowed",
            "--output",
            str(output),
        ],
    )
    assert forged.exit_code == 0, forged.output
    result = runner.invoke(
        app,
        [
            "import",
            str(output / "cycle_timer-1.0.0.zip"),
            "--keys-dir",
            str(folders["bob"]),
            "--target",
            str(folders["root"] / "imported"),
        ],
    )
    assert result.exit_code == 1
    assert "claims owner 'alice' but is signed by key" in result.output
    assert not (folders["root"] / "imported").exists()


def test_import_of_edited_package_is_refused(runner, folders):
    package = _export(runner, folders, "shared_read_only")
    edited = folders["root"] / "edited.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(edited, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "manifest.json":
                data = data.replace(b'"shared_read_only"', b'"copy_allowed"')
            out.writestr(info.filename, data)
    result = runner.invoke(
        app,
        [
            "import",
            str(edited),
            "--keys-dir",
            str(folders["bob"]),
            "--copy",
            "--target",
            str(folders["root"] / "imported"),
        ],
    )
    assert result.exit_code == 1 and "the signature does not match" in result.output


def test_import_of_shared_package_by_trusting_colleague_runs_it_read_only(runner, folders):
    package = _export(runner, folders, "shared_read_only")
    result = runner.invoke(
        app,
        [
            "import",
            str(package),
            "--keys-dir",
            str(folders["bob"]),
            "--require-trusted",
            "--target",
            str(folders["root"] / "run"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "(read-only)" in result.output and "not in your keyring" not in result.output
    listed = runner.invoke(app, ["keys", "list", "--keys-dir", str(folders["bob"])])
    assert "alice  SHA256:" in listed.output and "bob  SHA256:" in listed.output


def test_keys_generate_twice_keeps_the_first_key(runner, folders):
    before = (folders["alice"] / "alice.key").read_bytes()
    result = runner.invoke(app, ["keys", "generate", "alice", "--keys-dir", str(folders["alice"])])
    assert result.exit_code == 1 and "already exists" in result.output
    assert (folders["alice"] / "alice.key").read_bytes() == before
