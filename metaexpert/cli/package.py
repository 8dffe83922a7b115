"""``metaexpert export`` / ``import`` / ``keys``: signed strategy packages and the owner keys behind them.

    metaexpert keys generate alice                      # ~/.metaexpert/keys/alice.key (+ alice.pub to share)
    metaexpert keys trust bob.pub                       # bob's packages are now recognised as his
    metaexpert export cycle.py --version 1.0.0 --owner alice --permission shared_read_only
    metaexpert import cycle-1.0.0.zip                   # anyone: run a shared package
    metaexpert import cycle-1.0.0.zip --as alice --copy # the owner: proven by alice's private key

The owner is whoever holds the private key that signed the package; a typed user name grants
nothing. Keys live in ``--keys-dir``, else ``$METAEXPERT_KEYS_DIR``, else ``~/.metaexpert/keys``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from metaexpert.cli.errors import reported_errors
from metaexpert.cli.options import DebugOption

__all__ = ["export_command", "import_command", "keys_app"]

KeysDirOption = Annotated[
    Path | None,
    typer.Option(
        "--keys-dir",
        help="Key folder (default: $METAEXPERT_KEYS_DIR, else ~/.metaexpert/keys).",
        show_default=False,
    ),
]

keys_app = typer.Typer(
    help="Owner keys (Ed25519) that sign strategy packages, and the keyring of trusted owners.",
    no_args_is_help=True,
)


def _keys_dir(option: Path | None) -> Path:
    from metaexpert.backtest.signing import default_keys_dir

    return option.expanduser() if option is not None else default_keys_dir()


@keys_app.command("generate")
def keys_generate_command(
    name: Annotated[str, typer.Argument(help="Your owner name, e.g. alice.", show_default=False)],
    keys_dir: KeysDirOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing key (you lose its packages).")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Create an Ed25519 key pair: NAME.key (private, 0600) and NAME.pub (share it)."""
    from metaexpert.backtest.signing import fingerprint, generate_key, read_public_key_file

    with reported_errors(debug=debug):
        private_path, public_path = generate_key(name, _keys_dir(keys_dir), overwrite=force)
        _, key = read_public_key_file(public_path)
        Console(highlight=False).print(
            f"private key: {escape(str(private_path))} (keep it secret)\n"
            f"public key:  {escape(str(public_path))} (give it to whoever imports your "
            f"packages)\nfingerprint: {fingerprint(key)}"
        )


@keys_app.command("trust")
def keys_trust_command(
    public_key: Annotated[
        Path, typer.Argument(help="A colleague's NAME.pub file.", show_default=False)
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Owner name (default: the one in the file).", show_default=False
        ),
    ] = None,
    keys_dir: KeysDirOption = None,
    debug: DebugOption = False,
) -> None:
    """Add a public key to the keyring: packages claiming that owner must carry this key."""
    from metaexpert.backtest.signing import fingerprint, read_public_key_file, trust_public_key

    with reported_errors(debug=debug):
        target = trust_public_key(public_key, _keys_dir(keys_dir), name=name)
        owner, key = read_public_key_file(target)
        Console(highlight=False).print(
            f"trusted {escape(owner)} ({fingerprint(key)}): {escape(str(target))}"
        )


@keys_app.command("list")
def keys_list_command(keys_dir: KeysDirOption = None, debug: DebugOption = False) -> None:
    """Owner names and key fingerprints in the keyring (your own keys and trusted ones)."""
    from metaexpert.backtest.signing import fingerprint, trusted_keys

    with reported_errors(debug=debug):
        console = Console(highlight=False)
        keys = trusted_keys(_keys_dir(keys_dir))
        if not keys:
            console.print("no keys yet: `metaexpert keys generate NAME`")
        for owner, key in keys.items():
            console.print(f"{escape(owner)}  {fingerprint(key)}")


def export_command(
    file: Annotated[Path, typer.Argument(help="The expert file to package.", show_default=False)],
    version: Annotated[
        str, typer.Option("--version", help="Semantic version, e.g. 1.0.0.", show_default=False)
    ],
    owner: Annotated[
        str,
        typer.Option(
            "--owner", help="Your owner name: signs with KEYS_DIR/OWNER.key.", show_default=False
        ),
    ],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key", help="Private key file (default: KEYS_DIR/OWNER.key).", show_default=False
        ),
    ] = None,
    permission: Annotated[
        str, typer.Option("--permission", help="private, shared_read_only or copy_allowed.")
    ] = "private",
    name: Annotated[
        str | None,
        typer.Option("--name", help="Package name (default: file stem).", show_default=False),
    ] = None,
    parameters: Annotated[
        Path | None,
        typer.Option("--parameters", help="JSON file of chosen parameters.", show_default=False),
    ] = None,
    metrics: Annotated[
        Path | None, typer.Option("--metrics", help="JSON file of metrics.", show_default=False)
    ] = None,
    data_start: Annotated[str | None, typer.Option("--data-start", show_default=False)] = None,
    data_end: Annotated[str | None, typer.Option("--data-end", show_default=False)] = None,
    output: Annotated[Path, typer.Option("--output", help="Folder or .zip path.")] = Path(
        "output/packages"
    ),
    keys_dir: KeysDirOption = None,
    debug: DebugOption = False,
) -> None:
    """Export an expert file with its parameters and metrics as a package signed with the owner's key."""
    from metaexpert.backtest.packages import export_strategy
    from metaexpert.backtest.signing import load_owner_key

    with reported_errors(debug=debug):
        owner_key = load_owner_key(
            key.expanduser() if key else _keys_dir(keys_dir) / f"{owner}.key", owner
        )
        data_range = {"start": data_start, "end": data_end} if data_start and data_end else None
        path = export_strategy(
            file,
            output,
            name=name or file.stem,
            version=version,
            key=owner_key,
            owner=owner,
            permission=permission,
            parameters=json.loads(parameters.read_text()) if parameters else None,
            metrics=json.loads(metrics.read_text()) if metrics else None,
            data_range=data_range,
        )
        Console(highlight=False).print(
            f"package: {escape(str(path))} (signed by {escape(owner)}, {owner_key.fingerprint})"
        )


def import_command(
    package: Annotated[Path, typer.Argument(help="The package .zip.", show_default=False)],
    as_owner: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Import as this key holder (KEYS_DIR/NAME.key): the owner's rights need the owner's key.",
            show_default=False,
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Your private key file (instead of --as).", show_default=False),
    ] = None,
    target: Annotated[Path, typer.Option("--target", help="Folder to extract into.")] = Path(
        "strategies"
    ),
    copy: Annotated[
        bool, typer.Option("--copy", help="Editable copy (needs copy_allowed or ownership).")
    ] = False,
    require_trusted: Annotated[
        bool,
        typer.Option(
            "--require-trusted", help="Refuse packages whose owner is not in your keyring."
        ),
    ] = False,
    keys_dir: KeysDirOption = None,
    debug: DebugOption = False,
) -> None:
    """Verify a package's signature, hashes, owner and permission, then extract it."""
    from metaexpert.backtest.packages import import_strategy
    from metaexpert.backtest.signing import load_owner_key, trusted_keys

    with reported_errors(debug=debug):
        folder = _keys_dir(keys_dir)
        importer = None
        if key is not None:
            importer = load_owner_key(key.expanduser())
        elif as_owner is not None:
            importer = load_owner_key(folder / f"{as_owner}.key", as_owner)
        imported = import_strategy(
            package,
            target,
            importer=importer,
            trusted=trusted_keys(folder),
            require_trusted_owner=require_trusted,
            copy=copy,
        )
        manifest = imported.package.manifest
        console = Console(highlight=False)
        console.print(
            f"{escape(manifest.name)} {manifest.version} by {escape(manifest.owner)} "
            f"({manifest.owner_fingerprint}, {manifest.permission}) -> {escape(str(imported.expert_path))}"
            f"{'' if imported.editable else ' (read-only)'}"
        )
        if not imported.owner_trusted:
            console.print(
                f"note: {escape(manifest.owner)!s} is not in your keyring; the signature proves the files "
                "are as their key holder signed them, not who that is (`metaexpert keys trust NAME.pub`)"
            )
