"""Strategy packages: versioned zip with manifest, hashes and the owner's signature; permission on import."""

import json
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from metaexpert.backtest.packages import (
    PackageIntegrityError,
    PackagePermissionError,
    export_strategy,
    import_strategy,
    read_package,
)
from metaexpert.backtest.signing import OwnerKey
from metaexpert.core.errors import ConfigurationError

EXPERT = Path(__file__).parent / "experts" / "cycle_timer.py"


KEYS = {name: OwnerKey(name, Ed25519PrivateKey.generate()) for name in ("alice", "bob", "mallory")}


@pytest.fixture
def alice() -> OwnerKey:
    return KEYS["alice"]


@pytest.fixture
def bob() -> OwnerKey:
    return KEYS["bob"]


def export(tmp_path, permission="private", key=None, **extra):
    return export_strategy(
        EXPERT,
        tmp_path / "out",
        name="cycle_timer",
        version="1.2.0",
        key=key or KEYS["alice"],
        owner="alice",
        permission=permission,
        parameters={"phase": 36, "hold": 24},
        metrics={"sharpe_ratio": 2.5, "profit_factor": float("inf")},
        data_range={
            "start": "2024-01-01",
            "end": "2024-03-01",
            "symbol": "BTCUSDT",
            "timeframe": "1h",
        },
        **extra,
    )


def test_export_with_metadata_writes_manifest_with_hash_of_every_file(tmp_path):
    path = export(tmp_path)
    assert path.name == "cycle_timer-1.2.0.zip"
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        names = set(archive.namelist())
    assert (
        manifest["version"] == "1.2.0"
        and manifest["owner"] == "alice"
        and manifest["permission"] == "private"
    )
    assert (
        set(manifest["files"])
        == names - {"manifest.json", "manifest.sig"}
        == {"expert/cycle_timer.py", "parameters.json", "metrics.json"}
    )
    package = read_package(path)
    assert package.parameters == {"phase": 36, "hold": 24}
    assert package.metrics["profit_factor"] is None  # non-finite numbers stored as null
    assert package.expert_source == EXPERT.read_text()
    assert package.manifest.data_range.symbol == "BTCUSDT"


def test_import_with_tampered_file_raises_integrity_error(tmp_path):
    path = export(tmp_path, permission="copy_allowed")
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "parameters.json":
                data = b'{"phase": 0}'
            target.writestr(info, data)
    with pytest.raises(PackageIntegrityError, match="parameters.json has SHA-256"):
        import_strategy(tampered, tmp_path / "imported")


def test_import_with_extra_unlisted_file_raises_integrity_error(tmp_path):
    path = export(tmp_path, permission="copy_allowed")
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("expert/backdoor.py", "print('hi')")
    with pytest.raises(PackageIntegrityError, match="not in its manifest"):
        read_package(path)


def test_import_of_private_package_by_other_key_holder_raises_permission_error(
    tmp_path, bob, alice
):
    path = export(tmp_path, permission="private")
    with pytest.raises(PackagePermissionError, match="private"):
        import_strategy(path, tmp_path / "imported", importer=bob)
    with pytest.raises(PackagePermissionError, match="without a key"):
        import_strategy(path, tmp_path / "imported")
    imported = import_strategy(path, tmp_path / "mine", importer=alice, copy=True)
    assert (
        imported.editable
        and imported.importer_is_owner
        and imported.expert_path.read_text() == EXPERT.read_text()
    )


def test_shared_read_only_package_imports_read_only_but_refuses_copy(tmp_path, bob):
    path = export(tmp_path, permission="shared_read_only")
    with pytest.raises(PackagePermissionError, match="read-only"):
        import_strategy(path, tmp_path / "copy", importer=bob, copy=True)
    imported = import_strategy(path, tmp_path / "run", importer=bob)
    assert not imported.editable
    assert not (imported.expert_path.stat().st_mode & 0o222)
    expert = imported.load_expert()
    assert expert.declared_parameter_space.names == ["phase", "hold"]


def test_copy_allowed_package_gives_editable_copy_to_anyone(tmp_path):
    imported = import_strategy(
        export(tmp_path, permission="copy_allowed"), tmp_path / "copy", copy=True
    )
    assert imported.expert_path.stat().st_mode & 0o200
    assert imported.directory.name == "cycle_timer-1.2.0"


@pytest.mark.parametrize(
    "field, value, message",
    [("version", "v1", "version"), ("permission", "public", "public"), ("name", "../evil", "name")],
)
def test_export_with_invalid_manifest_field_raises_configuration_error(
    tmp_path, alice, field, value, message
):
    options = {
        "name": "cycle_timer",
        "version": "1.0.0",
        "owner": "alice",
        "permission": "private",
        field: value,
        "key": alice,
    }
    with pytest.raises(ConfigurationError, match=message):
        export_strategy(EXPERT, tmp_path, **options)


def test_export_with_secret_looking_parameter_is_refused(tmp_path, alice):
    with pytest.raises(ConfigurationError, match="secrets"):
        export_strategy(
            EXPERT, tmp_path, name="x", version="1.0.0", key=alice, parameters={"api_key": "k"}
        )


def _rewrite(path: Path, target: Path, change) -> Path:
    """Copy the zip, passing every member's bytes through ``change(name, data)``."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            out.writestr(info.filename, change(info.filename, source.read(info)))
    return target


def test_import_with_edited_permission_in_manifest_raises_signature_error(tmp_path):
    from metaexpert.backtest.packages import PackageSignatureError

    path = export(tmp_path, permission="private")

    def open_up(name, data):
        return data.replace(b'"private"', b'"copy_allowed"') if name == "manifest.json" else data

    edited = _rewrite(path, tmp_path / "edited.zip", open_up)
    with pytest.raises(PackageSignatureError, match="the signature does not match its manifest"):
        import_strategy(edited, tmp_path / "imported", copy=True)
    assert not (tmp_path / "imported").exists()


def test_import_with_owner_name_forged_by_other_key_raises_signature_error(tmp_path):
    from metaexpert.backtest.packages import PackageSignatureError

    # mallory signs a package with her own key but writes "alice" as the owner
    forged = export(tmp_path, permission="copy_allowed", key=KEYS["mallory"])
    assert read_package(forged).manifest.owner == "alice"
    with pytest.raises(PackageSignatureError, match="claims owner 'alice' but is signed by key"):
        import_strategy(forged, tmp_path / "imported", trusted={"alice": KEYS["alice"].public_key})
    with pytest.raises(PackageSignatureError, match="not in your trusted keys"):
        import_strategy(forged, tmp_path / "imported", trusted={}, require_trusted_owner=True)


def test_import_with_unsigned_package_raises_signature_error(tmp_path):
    from metaexpert.backtest.packages import PackageSignatureError

    path = export(tmp_path, permission="copy_allowed")
    unsigned = tmp_path / "unsigned.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(unsigned, "w") as out:
        for info in source.infolist():
            if info.filename != "manifest.sig":
                out.writestr(info.filename, source.read(info))
    with pytest.raises(PackageSignatureError, match="is not signed"):
        read_package(unsigned)


def test_imported_package_keeps_the_signed_manifest_verifiable(tmp_path, alice):
    imported = import_strategy(
        export(tmp_path, permission="private"), tmp_path / "mine", importer=alice
    )
    assert (imported.directory / "manifest.sig").is_file()
    repacked = tmp_path / "repacked.zip"
    with zipfile.ZipFile(repacked, "w") as out:
        for file in imported.directory.rglob("*"):
            if file.is_file():
                out.write(file, file.relative_to(imported.directory).as_posix())
    assert read_package(repacked).manifest.owner_key == alice.public_key
