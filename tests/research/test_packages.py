"""Strategy packages: versioned zip with manifest and hashes; permission and integrity on import."""

import json
import zipfile
from pathlib import Path

import pytest

from metaexpert.backtest.packages import (
    PackageIntegrityError,
    PackagePermissionError,
    export_strategy,
    import_strategy,
    read_package,
)
from metaexpert.core.errors import ConfigurationError

EXPERT = Path(__file__).parent / "experts" / "cycle_timer.py"


def export(tmp_path, permission="private", **extra):
    return export_strategy(EXPERT, tmp_path / "out", name="cycle_timer", version="1.2.0", owner="alice",
                           permission=permission, parameters={"phase": 36, "hold": 24},
                           metrics={"sharpe_ratio": 2.5, "profit_factor": float("inf")},
                           data_range={"start": "2024-01-01", "end": "2024-03-01", "symbol": "BTCUSDT", "timeframe": "1h"},
                           **extra)


def test_export_with_metadata_writes_manifest_with_hash_of_every_file(tmp_path):
    path = export(tmp_path)
    assert path.name == "cycle_timer-1.2.0.zip"
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        names = set(archive.namelist())
    assert manifest["version"] == "1.2.0" and manifest["owner"] == "alice" and manifest["permission"] == "private"
    assert set(manifest["files"]) == names - {"manifest.json"} == {"expert/cycle_timer.py", "parameters.json", "metrics.json"}
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
        import_strategy(tampered, tmp_path / "imported", user="bob")


def test_import_with_extra_unlisted_file_raises_integrity_error(tmp_path):
    path = export(tmp_path, permission="copy_allowed")
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("expert/backdoor.py", "print('hi')")
    with pytest.raises(PackageIntegrityError, match="not in its manifest"):
        read_package(path)


def test_import_of_private_package_by_other_user_raises_permission_error(tmp_path):
    path = export(tmp_path, permission="private")
    with pytest.raises(PackagePermissionError, match="private"):
        import_strategy(path, tmp_path / "imported", user="bob")
    imported = import_strategy(path, tmp_path / "mine", user="alice", copy=True)
    assert imported.editable and imported.expert_path.read_text() == EXPERT.read_text()


def test_shared_read_only_package_imports_read_only_but_refuses_copy(tmp_path):
    path = export(tmp_path, permission="shared_read_only")
    with pytest.raises(PackagePermissionError, match="read-only"):
        import_strategy(path, tmp_path / "copy", user="bob", copy=True)
    imported = import_strategy(path, tmp_path / "run", user="bob")
    assert not imported.editable
    assert not (imported.expert_path.stat().st_mode & 0o222)
    expert = imported.load_expert()
    assert expert.declared_parameter_space.names == ["phase", "hold"]


def test_copy_allowed_package_gives_editable_copy_to_anyone(tmp_path):
    imported = import_strategy(export(tmp_path, permission="copy_allowed"), tmp_path / "copy", user="bob", copy=True)
    assert imported.expert_path.stat().st_mode & 0o200
    assert imported.directory.name == "cycle_timer-1.2.0"


@pytest.mark.parametrize("field, value, message", [("version", "v1", "version"), ("permission", "public", "public"),
                                                   ("name", "../evil", "name")])
def test_export_with_invalid_manifest_field_raises_configuration_error(tmp_path, field, value, message):
    options = {"name": "cycle_timer", "version": "1.0.0", "owner": "alice", "permission": "private", field: value}
    with pytest.raises(ConfigurationError, match=message):
        export_strategy(EXPERT, tmp_path, **options)


def test_export_with_secret_looking_parameter_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="secrets"):
        export_strategy(EXPERT, tmp_path, name="x", version="1.0.0", owner="alice", parameters={"api_key": "k"})
