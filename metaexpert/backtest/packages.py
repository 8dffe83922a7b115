"""Strategy packages: an expert file with its parameters, metrics and data range, as one versioned zip.

A package is how a strategy travels between people: ``export_strategy`` writes
``<name>-<version>.zip`` with

* ``manifest.json``: format version, name, version, owner name and owner public key,
  permission, creation time, the data range the metrics came from, and the SHA-256 of every
  other file;
* ``manifest.sig``: the owner's Ed25519 signature of the exact ``manifest.json`` bytes;
* ``expert/<file>.py``: the expert file itself;
* ``parameters.json``, ``metrics.json``: the chosen parameters and what they achieved.

``import_strategy`` checks the signature and integrity first (the manifest signed by the key
it names; every file listed, present and matching its hash; nothing extra; no path escaping
the target), then who the owner is (a name in your keyring must come with its trusted key,
else the package is a forgery), then the permission:

* ``private``: only the owner may import it;
* ``shared_read_only``: anyone may import it to run it (files extracted read-only);
  only the owner may take an editable copy;
* ``copy_allowed``: anyone may import it and take an editable copy.

"The owner" means whoever holds the private key that signed the package (``importer=``
an ``OwnerKey``): a user name typed on the command line grants nothing. Keys and the
keyring are in ``signing.py``.
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

from metaexpert.backtest.signing import OwnerKey, SignatureError, fingerprint, sign, verify
from metaexpert.core.errors import ConfigurationError, MetaExpertError

FORMAT_VERSION = 2  # 2: signed by the owner's Ed25519 key (format 1 had only hashes and is refused)
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
_SECRET_KEY = re.compile(r"(api_?key|secret|passphrase|password|token|private_?key)", re.IGNORECASE)


class PackageError(MetaExpertError):
    """A strategy package cannot be read or written."""


class PackageIntegrityError(PackageError):
    """A package's files do not match its manifest (corrupted or tampered with)."""


class PackagePermissionError(PackageError):
    """The package's permission does not allow this user to import or copy it."""


class PackageSignatureError(PackageIntegrityError):
    """A package is unsigned, its signature does not match, or it claims an owner whose trusted key differs."""


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
    version: str = Field(
        pattern=r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$", description="semantic version"
    )
    owner: str = Field(min_length=1, max_length=200)
    owner_key: str = Field(
        min_length=44, max_length=44, description="base64 Ed25519 public key of the owner"
    )
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
            raise ValueError(
                f"package format {value} is newer than this MetaExpert understands ({FORMAT_VERSION})"
            )
        return value

    @property
    def owner_fingerprint(self) -> str:
        return fingerprint(self.owner_key)


@dataclass(frozen=True, slots=True)
class StrategyPackage:
    """A verified package held in memory."""

    manifest: PackageManifest
    files: dict[str, bytes]
    manifest_bytes: bytes = b""  # exactly as signed
    signature: bytes = b""

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
    owner_trusted: bool = False  # the owner's name and key are in the importer's keyring
    importer_is_owner: bool = False

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
    key: OwnerKey,
    owner: str | None = None,
    permission: Permission | str = Permission.PRIVATE,
    parameters: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    data_range: DataRange | dict[str, Any] | None = None,
    description: str = "",
) -> Path:
    """Write ``destination/<name>-<version>.zip`` (or ``destination`` itself if it ends in .zip), signed by ``key``.

    ``owner`` defaults to the key's name; the manifest records the key's public half, so the
    owner is whoever holds ``key``.
    """
    if not isinstance(key, OwnerKey):
        raise ConfigurationError("export_strategy needs the owner's key (signing.load_owner_key)")
    source = Path(expert_file)
    if not source.is_file() or source.suffix != ".py":
        raise ConfigurationError(f"expert file {source} must be an existing .py file")
    secret_keys = [
        key for key in {**(parameters or {}), **(metrics or {})} if _SECRET_KEY.search(key)
    ]
    if secret_keys:
        raise ConfigurationError(
            f"refusing to package values that look like secrets: {sorted(secret_keys)}"
        )
    files = {
        f"expert/{source.name}": source.read_bytes(),
        "parameters.json": json.dumps(
            parameters or {}, indent=2, sort_keys=True, default=str
        ).encode(),
        "metrics.json": json.dumps(_json_safe(metrics or {}), indent=2, sort_keys=True).encode(),
    }
    try:
        manifest = PackageManifest(
            name=name,
            version=version,
            owner=owner or key.name,
            owner_key=key.public_key,
            permission=Permission(permission),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            description=description,
            expert_file=f"expert/{source.name}",
            data_range=DataRange.model_validate(data_range)
            if isinstance(data_range, dict)
            else data_range,
            files={archive_name: sha256_bytes(data) for archive_name, data in files.items()},
        )
    except (ValidationError, ValueError) as error:
        raise ConfigurationError(f"invalid package manifest: {error}") from None
    target = Path(destination)
    if target.suffix != ".zip":
        target = target / f"{name}-{version}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    manifest_bytes = manifest.model_dump_json(indent=2).encode()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, manifest_bytes)
        archive.writestr(SIGNATURE, sign(key, manifest_bytes))
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
            contents = {
                info.filename: archive.read(info)
                for info in archive.infolist()
                if not info.is_dir()
            }
    except (zipfile.BadZipFile, OSError) as error:
        raise PackageIntegrityError(
            f"package {source} is not a readable zip file: {error}"
        ) from None
    if MANIFEST not in contents:
        raise PackageIntegrityError(f"package {source} has no {MANIFEST}")
    manifest_bytes = contents.pop(MANIFEST)
    signature = contents.pop(SIGNATURE, None)
    manifest = _manifest(source, manifest_bytes)
    if signature is None:
        raise PackageSignatureError(
            f"package {source} is not signed (no {SIGNATURE}); only signed packages "
            "are imported: ask its owner to export it again"
        )
    try:
        verify(manifest.owner_key, signature.decode("ascii", errors="replace"), manifest_bytes)
    except SignatureError:
        raise PackageSignatureError(
            f"package {source}: the signature does not match its manifest and owner key "
            f"{manifest.owner_fingerprint}; the manifest (owner, permission or file hashes) was edited after "
            "signing, or the package was signed with another key"
        ) from None
    for archive_name in [*contents, *manifest.files]:
        pure = PurePosixPath(archive_name)
        if pure.is_absolute() or ".." in pure.parts or "\\" in archive_name:
            raise PackageIntegrityError(
                f"package {source} contains an unsafe path {archive_name!r}"
            )
    missing = sorted(set(manifest.files) - set(contents))
    if missing:
        raise PackageIntegrityError(
            f"package {source} lacks files listed in its manifest: {missing}"
        )
    unexpected = sorted(set(contents) - set(manifest.files))
    if unexpected:
        raise PackageIntegrityError(
            f"package {source} contains files not in its manifest: {unexpected}"
        )
    for archive_name, expected in manifest.files.items():
        actual = sha256_bytes(contents[archive_name])
        if actual != expected:
            raise PackageIntegrityError(
                f"package {source}: {archive_name} has SHA-256 {actual[:16]}..., the manifest "
                f"says {expected[:16]}...; the file was modified or corrupted"
            )
    if manifest.expert_file not in contents:
        raise PackageIntegrityError(
            f"package {source}: the expert file {manifest.expert_file} is missing"
        )
    return StrategyPackage(manifest, contents, manifest_bytes, signature)


def _manifest(source: Path, data: bytes) -> PackageManifest:
    try:
        return PackageManifest.model_validate_json(data)
    except ValidationError as error:
        if b'"format_version": 1' in data or b'"format_version":1' in data:
            raise PackageSignatureError(
                f"package {source} uses format 1 (unsigned); only signed packages "
                "are imported: ask its owner to export it again"
            ) from None
        raise PackageIntegrityError(f"package {source} has an invalid manifest: {error}") from None


def check_owner(manifest: PackageManifest, trusted: dict[str, str] | None) -> bool:
    """True if the keyring knows the owner with this key; a known name with another key is a forgery."""
    known = (trusted or {}).get(manifest.owner)
    if known is None:
        return False
    if known != manifest.owner_key:
        raise PackageSignatureError(
            f"{manifest.name} {manifest.version} claims owner {manifest.owner!r} but is signed by key "
            f"{manifest.owner_fingerprint}; your trusted key for {manifest.owner!r} is {fingerprint(known)}: "
            "the package is not theirs"
        )
    return True


def check_permission(manifest: PackageManifest, importer: OwnerKey | None, *, copy: bool) -> bool:
    """Raise ``PackagePermissionError`` unless ``importer`` may import (and, with ``copy``, copy) the package.

    Returns whether the importer is the owner: the holder of the private key whose public
    half the signed manifest names (a name proves nothing).
    """
    if importer is not None and importer.public_key == manifest.owner_key:
        return True
    who = (
        "without a key"
        if importer is None
        else f"with key {importer.name} ({importer.fingerprint})"
    )
    label = f"{manifest.name} {manifest.version} (owner {manifest.owner}, key {manifest.owner_fingerprint})"
    if manifest.permission is Permission.PRIVATE:
        raise PackagePermissionError(
            f"{label} is private: only the holder of its owner's key may import it; "
            f"you import {who}"
        )
    if copy and manifest.permission is Permission.SHARED_READ_ONLY:
        raise PackagePermissionError(
            f"{label} is shared read-only: importing {who} you may run it but not copy it"
        )
    return False


def import_strategy(
    path: str | Path,
    target_dir: str | Path,
    *,
    importer: OwnerKey | None = None,
    trusted: dict[str, str] | None = None,
    require_trusted_owner: bool = False,
    copy: bool = False,
) -> ImportedStrategy:
    """Verify the signature and hashes, check the owner and permission, extract to ``target_dir/<name>-<version>/``.

    ``importer`` is the importing user's own key (needed for the owner's rights); ``trusted``
    maps owner names to public keys (``signing.trusted_keys()``). Without ``copy`` the files are
    extracted read-only (to run); ``copy=True`` gives an editable copy and needs ``copy_allowed``
    or ownership.
    """
    package = read_package(path)
    manifest = package.manifest
    owner_trusted = check_owner(manifest, trusted)
    if require_trusted_owner and not owner_trusted:
        raise PackageSignatureError(
            f"{manifest.name} {manifest.version}: owner {manifest.owner!r} (key "
            f"{manifest.owner_fingerprint}) is not in your trusted keys"
        )
    is_owner = check_permission(manifest, importer, copy=copy)
    directory = Path(target_dir) / f"{manifest.name}-{manifest.version}"
    if directory.exists() and any(directory.iterdir()):
        raise PackageError(
            f"{directory} already exists and is not empty; remove it or choose another target"
        )
    signed = {
        MANIFEST: package.manifest_bytes,
        SIGNATURE: package.signature,
    }  # kept verbatim: still verifiable
    for archive_name, data in {**signed, **package.files}.items():
        target = directory / archive_name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if not copy:
            target.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return ImportedStrategy(
        package,
        directory,
        directory / manifest.expert_file,
        editable=copy,
        owner_trusted=owner_trusted or is_owner,
        importer_is_owner=is_owner,
    )


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
