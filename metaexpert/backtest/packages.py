"""Strategy packages: an expert file with its parameters, metrics and data range, as one versioned zip.

A package is how a strategy travels between people: ``export_strategy`` writes
``<name>-<version>.zip`` with

* ``manifest.json``: format version, name, version, owner, permission, creation time,
  the data range the metrics came from, and the SHA-256 of every other file;
* ``expert/<file>.py``: the expert file itself;
* ``parameters.json``, ``metrics.json``: the chosen parameters and what they achieved.

``import_strategy`` checks integrity first (every file listed, present and matching its
hash; nothing extra; no path escaping the target), then the permission:

* ``private``: only the owner may import it;
* ``shared_read_only``: anyone may import it to run it (files extracted read-only);
  only the owner may take an editable copy;
* ``copy_allowed``: anyone may import it and take an editable copy.

The hashes detect corruption and tampering with a file; they do not authenticate the
author (whoever can rewrite the zip can rewrite the manifest too): sign the zip with your
usual tooling when that matters.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import stat
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from metaexpert.core.errors import ConfigurationError, MetaExpertError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_SECRET_KEY = re.compile(r"(api_?key|secret|passphrase|password|token|private_?key)", re.IGNORECASE)


class PackageError(MetaExpertError):
    """A strategy package cannot be read or written."""


class PackageIntegrityError(PackageError):
    """A package's files do not match its manifest (corrupted or tampered with)."""


class PackagePermissionError(PackageError):
    """The package's permission does not allow this user to import or copy it."""


class Permission(StrEnum):
    PRIVATE = "private"
    SHARED_READ_ONLY = "shared_read_only"
    COPY_ALLOWED = "copy_allowed"


class DataRange(BaseModel):
    """The market data the package's metrics were measured on."""

    model_config = ConfigDict(extra="forbid")
    start: str
    end: str
    exchange: str | None = None
    market_type: str | None = None
    symbol: str | None = None
    timeframe: str | None = None


class PackageManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$", description="semantic version")
    owner: str = Field(min_length=1, max_length=200)
    permission: Permission = Permission.PRIVATE
    created_at: str
    description: str = ""
    expert_file: str
    data_range: DataRange | None = None
    files: dict[str, str] = Field(description="archive name -> SHA-256 hex of its bytes")

    @field_validator("format_version")
    @classmethod
    def _known_format(cls, value: int) -> int:
        if value > FORMAT_VERSION:
            raise ValueError(f"package format {value} is newer than this MetaExpert understands ({FORMAT_VERSION})")
        return value


@dataclass(frozen=True, slots=True)
class StrategyPackage:
    """A verified package held in memory."""

    manifest: PackageManifest
    files: dict[str, bytes]

    @property
    def parameters(self) -> dict[str, Any]:
        return json.loads(self.files.get("parameters.json", b"{}"))

    @property
    def metrics(self) -> dict[str, Any]:
        return json.loads(self.files.get("metrics.json", b"{}"))

    @property
    def expert_source(self) -> str:
        return self.files[self.manifest.expert_file].decode("utf-8")


@dataclass(frozen=True, slots=True)
class ImportedStrategy:
    package: StrategyPackage
    directory: Path
    expert_path: Path
    editable: bool

    def load_expert(self, variable: str | None = None) -> Any:
        """Import the expert file and return its MetaExpert (the ``__main__`` block stays dormant)."""
        from metaexpert.backtest.optimization.execution import load_expert_file

        return load_expert_file(self.expert_path, variable)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_strategy(
    expert_file: str | Path,
    destination: str | Path,
    *,
    name: str,
    version: str,
    owner: str,
    permission: Permission | str = Permission.PRIVATE,
    parameters: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    data_range: DataRange | dict[str, Any] | None = None,
    description: str = "",
) -> Path:
    """Write ``destination/<name>-<version>.zip`` (or ``destination`` itself if it ends in .zip)."""
    source = Path(expert_file)
    if not source.is_file() or source.suffix != ".py":
        raise ConfigurationError(f"expert file {source} must be an existing .py file")
    secret_keys = [key for key in {**(parameters or {}), **(metrics or {})} if _SECRET_KEY.search(key)]
    if secret_keys:
        raise ConfigurationError(f"refusing to package values that look like secrets: {sorted(secret_keys)}")
    files = {
        f"expert/{source.name}": source.read_bytes(),
        "parameters.json": json.dumps(parameters or {}, indent=2, sort_keys=True, default=str).encode(),
        "metrics.json": json.dumps(_json_safe(metrics or {}), indent=2, sort_keys=True).encode(),
    }
    try:
        manifest = PackageManifest(
            name=name, version=version, owner=owner, permission=Permission(permission),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"), description=description,
            expert_file=f"expert/{source.name}",
            data_range=DataRange.model_validate(data_range) if isinstance(data_range, dict) else data_range,
            files={archive_name: sha256_bytes(data) for archive_name, data in files.items()},
        )
    except (ValidationError, ValueError) as error:
        raise ConfigurationError(f"invalid package manifest: {error}") from None
    target = Path(destination)
    if target.suffix != ".zip":
        target = target / f"{name}-{version}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, manifest.model_dump_json(indent=2))
        for archive_name, data in files.items():
            archive.writestr(archive_name, data)
    return target


def read_package(path: str | Path) -> StrategyPackage:
    """Open a package and verify it; raises ``PackageIntegrityError`` on any mismatch."""
    source = Path(path)
    if not source.is_file():
        raise PackageError(f"package {source} does not exist")
    try:
        with zipfile.ZipFile(source) as archive:
            contents = {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    except (zipfile.BadZipFile, OSError) as error:
        raise PackageIntegrityError(f"package {source} is not a readable zip file: {error}") from None
    if MANIFEST not in contents:
        raise PackageIntegrityError(f"package {source} has no {MANIFEST}")
    try:
        manifest = PackageManifest.model_validate_json(contents.pop(MANIFEST))
    except ValidationError as error:
        raise PackageIntegrityError(f"package {source} has an invalid manifest: {error}") from None
    for archive_name in [*contents, *manifest.files]:
        pure = PurePosixPath(archive_name)
        if pure.is_absolute() or ".." in pure.parts or "\\" in archive_name:
            raise PackageIntegrityError(f"package {source} contains an unsafe path {archive_name!r}")
    missing = sorted(set(manifest.files) - set(contents))
    if missing:
        raise PackageIntegrityError(f"package {source} lacks files listed in its manifest: {missing}")
    unexpected = sorted(set(contents) - set(manifest.files))
    if unexpected:
        raise PackageIntegrityError(f"package {source} contains files not in its manifest: {unexpected}")
    for archive_name, expected in manifest.files.items():
        actual = sha256_bytes(contents[archive_name])
        if actual != expected:
            raise PackageIntegrityError(f"package {source}: {archive_name} has SHA-256 {actual[:16]}..., the manifest "
                                        f"says {expected[:16]}...; the file was modified or corrupted")
    if manifest.expert_file not in contents:
        raise PackageIntegrityError(f"package {source}: the expert file {manifest.expert_file} is missing")
    return StrategyPackage(manifest, contents)


def check_permission(manifest: PackageManifest, user: str, *, copy: bool) -> None:
    """Raise ``PackagePermissionError`` unless ``user`` may import (and, with ``copy``, copy) the package."""
    if user == manifest.owner:
        return
    label = f"{manifest.name} {manifest.version} (owner {manifest.owner})"
    if manifest.permission is Permission.PRIVATE:
        raise PackagePermissionError(f"{label} is private: only its owner may import it, not {user!r}")
    if copy and manifest.permission is Permission.SHARED_READ_ONLY:
        raise PackagePermissionError(f"{label} is shared read-only: {user!r} may import and run it but not copy it")


def import_strategy(path: str | Path, target_dir: str | Path, *, user: str, copy: bool = False) -> ImportedStrategy:
    """Verify, check the permission, and extract to ``target_dir/<name>-<version>/``.

    Without ``copy`` the files are extracted read-only (to run); ``copy=True`` gives an
    editable copy and needs ``copy_allowed`` or ownership.
    """
    if not user:
        raise ConfigurationError("import_strategy needs the importing user's name")
    package = read_package(path)
    manifest = package.manifest
    check_permission(manifest, user, copy=copy)
    directory = Path(target_dir) / f"{manifest.name}-{manifest.version}"
    if directory.exists() and any(directory.iterdir()):
        raise PackageError(f"{directory} already exists and is not empty; remove it or choose another target")
    for archive_name, data in {MANIFEST: manifest.model_dump_json(indent=2).encode(), **package.files}.items():
        target = directory / archive_name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if not copy:
            target.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return ImportedStrategy(package, directory, directory / manifest.expert_file, editable=copy)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)
