"""Owner keys for strategy packages: Ed25519 key pairs, signatures and a keyring of trusted owners.

A package's owner is not a name anyone can type: it is the holder of an Ed25519 private key.
``export`` signs the package manifest (which lists the SHA-256 of every file) with the owner's
private key and records the public key in the manifest; ``import`` verifies the signature, so
an edited manifest or file is refused, and grants the owner's rights only to whoever proves
possession of the same private key. The keyring (``<keys>/trusted/<name>.pub`` plus your own
``<keys>/<name>.pub``) says which public key belongs to which owner name, so a package that
claims a known owner's name but is signed by another key is refused as forged.

Keys live in ``$METAEXPERT_KEYS_DIR``, else ``~/.metaexpert/keys``: ``<name>.key`` (PKCS#8 PEM,
mode 0600, encrypted when ``METAEXPERT_KEY_PASSPHRASE`` is set) and ``<name>.pub`` (one line:
``ed25519 <base64 public key> <name>``, safe to share).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from metaexpert.core.errors import ConfigurationError, MetaExpertError

KEYS_DIR_VARIABLE = "METAEXPERT_KEYS_DIR"
PASSPHRASE_VARIABLE = "METAEXPERT_KEY_PASSPHRASE"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")
_PUBLIC_PREFIX = "ed25519"

__all__ = [
    "KeyFileError",
    "OwnerKey",
    "SignatureError",
    "default_keys_dir",
    "fingerprint",
    "generate_key",
    "load_owner_key",
    "load_public_key",
    "public_key_text",
    "read_public_key_file",
    "sign",
    "trust_public_key",
    "trusted_keys",
    "verify",
]


class SignatureError(MetaExpertError):
    """A signature is missing, malformed, or does not match the data and key."""


class KeyFileError(ConfigurationError):
    """A key file is missing, unreadable, or not an Ed25519 key."""


@dataclass(frozen=True, slots=True)
class OwnerKey:
    """A named private key: who signs a package (and proves ownership on import)."""

    name: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> str:
        """The base64 raw public key (what a manifest records)."""
        return public_key_text(self.private_key.public_key())

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)


def default_keys_dir() -> Path:
    configured = os.environ.get(KEYS_DIR_VARIABLE, "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".metaexpert" / "keys"


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from its base64 raw form; ``SignatureError`` when it is not one."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error, UnicodeEncodeError) as error:
        raise SignatureError(
            f"{text[:20]!r}... is not a base64 Ed25519 public key: {error}"
        ) from None


def fingerprint(public_key: str) -> str:
    """A short, comparable name of a public key: ``SHA256:`` and 16 hex digits."""
    return "SHA256:" + hashlib.sha256(public_key.encode("ascii")).hexdigest()[:16]


def sign(key: OwnerKey, data: bytes) -> str:
    return base64.b64encode(key.private_key.sign(data)).decode("ascii")


def verify(public_key: str, signature: str, data: bytes) -> None:
    """Return if ``signature`` is ``public_key``'s signature of ``data``; else raise ``SignatureError``."""
    key = load_public_key(public_key)
    try:
        raw = base64.b64decode(signature.strip().encode("ascii"), validate=True)
        key.verify(raw, data)
    except (InvalidSignature, ValueError, binascii.Error, UnicodeEncodeError):
        raise SignatureError(
            f"the signature does not match the data for key {fingerprint(public_key)}"
        ) from None


def _check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ConfigurationError(
            f"key name {name!r}: use letters, digits, '_', '.', '@' or '-' (at most 100)"
        )
    return name


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_VARIABLE)
    return value.encode() if value else None


def generate_key(
    name: str, directory: Path | None = None, *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Create ``<name>.key`` (0600) and ``<name>.pub`` in ``directory``; an existing key is never replaced
    unless ``overwrite`` (losing a key loses the ownership of everything it signed)."""
    folder = directory or default_keys_dir()
    _check_name(name)
    private_path, public_path = folder / f"{name}.key", folder / f"{name}.pub"
    if private_path.exists() and not overwrite:
        raise ConfigurationError(
            f"{private_path} already exists; keep it (it proves your ownership) or pass --force"
        )
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    passphrase = _passphrase()
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public_path.write_text(
        f"{_PUBLIC_PREFIX} {public_key_text(key.public_key())} {name}\n", encoding="ascii"
    )
    return private_path, public_path


def load_owner_key(path: Path, name: str | None = None) -> OwnerKey:
    """The private key at ``path`` (named after its file stem unless ``name``)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise KeyFileError(
            f"cannot read key {path}: {error.strerror or error} "
            "(create one with `metaexpert keys generate NAME`)"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=_passphrase())
    except TypeError:
        raise KeyFileError(f"key {path} is encrypted: set {PASSPHRASE_VARIABLE}") from None
    except ValueError as error:
        raise KeyFileError(
            f"{path} is not a readable private key (wrong {PASSPHRASE_VARIABLE}?): {error}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(
            f"{path} holds a {type(key).__name__}; packages are signed with Ed25519 keys"
        )
    return OwnerKey(_check_name(name or path.stem), key)


def read_public_key_file(path: Path) -> tuple[str, str]:
    """``(name, base64 public key)`` from a ``.pub`` file written by ``generate_key``."""
    try:
        parts = path.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError) as error:
        raise KeyFileError(f"cannot read public key {path}: {error}") from None
    if len(parts) not in (2, 3) or parts[0] != _PUBLIC_PREFIX:
        raise KeyFileError(
            f"{path} is not a MetaExpert public key file ('ed25519 <base64> <name>')"
        )
    load_public_key(parts[1])
    return (parts[2] if len(parts) == 3 else path.stem), parts[1]


def trust_public_key(path: Path, directory: Path | None = None, *, name: str | None = None) -> Path:
    """Copy a colleague's ``.pub`` file into the keyring (``<keys>/trusted/<name>.pub``)."""
    owner, key = read_public_key_file(path)
    owner = _check_name(name or owner)
    folder = (directory or default_keys_dir()) / "trusted"
    target = folder / f"{owner}.pub"
    known = trusted_keys(directory).get(owner)
    if known is not None and known != key:
        raise ConfigurationError(
            f"{owner} is already trusted with key {fingerprint(known)}; this file has "
            f"{fingerprint(key)} (remove {target} first if the owner really changed keys)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(f"{_PUBLIC_PREFIX} {key} {owner}\n", encoding="ascii")
    return target


def trusted_keys(directory: Path | None = None) -> dict[str, str]:
    """Owner name -> public key, from your own ``*.pub`` and the ``trusted/`` folder."""
    folder = directory or default_keys_dir()
    keys: dict[str, str] = {}
    for path in sorted([*folder.glob("*.pub"), *(folder / "trusted").glob("*.pub")]):
        name, key = read_public_key_file(path)
        keys[name] = key
    return keys
