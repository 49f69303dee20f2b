"""``dure keys``: create signing keys, SuperNode keys and site identities."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dure.cli.output import make_console

__all__ = ["register"]

console = make_console()


def register(keys: typer.Typer) -> None:
    """Add the key commands to the ``dure keys`` group."""
    keys.command("new")(_new)
    keys.command("supernode")(_supernode)
    keys.command("identity")(_identity)


def _new(
    path: Annotated[Path, typer.Argument(help="Private key file to create (mode 0600).")],
) -> None:
    """Create an Ed25519 signing key PATH and its public key PATH.pub."""
    from dure.policies.keys import SigningKey

    key = SigningKey.generate()
    key.save(path)
    key.public.save(path.with_name(path.name + ".pub"))
    console.print(f"key id  {key.key_id}")
    console.print(f"private {path} (0600)\npublic  {path}.pub")


def _supernode(
    path: Annotated[Path, typer.Argument(help="Private key file to create (OpenSSH, 0600).")],
) -> None:
    """Create the ECDSA P-384 key a site's Flower SuperNode authenticates with."""
    from dure.policies.supernode_key import generate_supernode_key

    public = generate_supernode_key(path)
    console.print(f"private {path} (0600)\npublic  {path}.pub\n{public}")


def _identity(
    site: Annotated[str, typer.Option(help="The site's id, e.g. factory-a.")],
    key: Annotated[Path, typer.Option(help="The site's Ed25519 private key.")],
    supernode_pub: Annotated[Path, typer.Option(help="The SuperNode's OpenSSH public key.")],
    out: Annotated[Path, typer.Option(help="Where to write the signed identity.")],
) -> None:
    """Sign the site identity that binds SITE to its signing and SuperNode keys."""
    from dure.cli.files import load_signing_key, read_text, write_new
    from dure.policies.identity import SiteIdentity, sign_site_identity

    signing = load_signing_key(key)
    document = SiteIdentity.create(site, signing, read_text(supernode_pub))
    write_new(out, sign_site_identity(document, signing).to_json())
    console.print(f"identity of {site} written to {out} (id {document.document_id()[:16]}…)")
