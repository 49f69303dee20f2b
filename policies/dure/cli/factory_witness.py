"""``dure factory witness``: cosign the ledger's checkpoints after checking consistency.

``dure factory witness key --name NAME --out FILE`` creates the factory's witness
key (``cosignature/v1``, Ed25519) and prints the verifier key to give the
consortium and auditors.  ``dure factory witness cosign`` checks a checkpoint
(``--checkpoint FILE`` with ``--proof FILE``, or the coordinator's *pending*
checkpoint fetched with its proof from ``--url``) against the ledger key you
pinned and the checkpoint this factory cosigned last (kept in ``--home``), then
writes the cosigned note (``--out``, or standard output).  With ``--url`` it
also posts the cosignature to the coordinator (``--no-submit`` to skip), which
publishes the checkpoint once the consortium's witness quorum cosigned it, and
prints how far that is.  It refuses, and says why, when the checkpoint is not the
log's or does not extend the last one: that is a fork shown to this factory, and
nothing is posted.
The client is imported lazily, inside the commands.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dure.cli.output import make_console, styled

if TYPE_CHECKING:
    from dure.client.audit.witness import FactoryWitness

__all__ = ["register"]

err_console = make_console(stderr=True)

Home = Annotated[
    Path,
    typer.Option(envvar="DURE_FACTORY_HOME", help="Factory home; the witness state lives there."),
]
DEFAULT_HOME = Path("dure-factory")


def register(factory: typer.Typer) -> None:
    """Add the ``witness`` group to the ``dure factory`` group."""
    witness = typer.Typer(
        help="Cosign ledger checkpoints after checking they extend the last one.",
        no_args_is_help=True,
    )
    witness.command("key")(_key)
    witness.command("cosign")(_cosign)
    factory.add_typer(witness, name="witness")


def _key(
    name: Annotated[str, typer.Option(help="Witness key name, e.g. factory-a.example/witness.")],
    out: Annotated[Path, typer.Option(help="Where to write the secret witness key (mode 0600).")],
) -> None:
    """Create a witness key; print the verifier key to share."""
    from dure.policies.checkpoint import Cosigner

    cosigner = Cosigner.generate(name)
    _write_secret(out, (cosigner.to_skey() + "\n").encode("ascii"))
    err_console.print(f"witness key written to {out}; its verifier key (share this):")
    typer.echo(cosigner.verifier().to_vkey())


def _cosign(
    key: Annotated[Path, typer.Option(help="The factory's secret witness key file.")],
    public_key: Annotated[
        str, typer.Option(help="The ledger key you pinned (name+keyid+base64), or a file.")
    ],
    checkpoint: Annotated[
        Path | None, typer.Option(help="A signed checkpoint note to cosign.")
    ] = None,
    proof: Annotated[
        Path | None,
        typer.Option(help='Consistency proof JSON {"first", "second", "hashes"} for --checkpoint.'),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="Fetch the pending checkpoint and proof from the coordinator."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the cosigned note here.")] = None,
    home: Home = DEFAULT_HOME,
    submit: Annotated[
        bool,
        typer.Option(
            "--submit/--no-submit", help="With --url, post the cosignature to the coordinator."
        ),
    ] = True,
) -> None:
    """Cosign a checkpoint if it extends the one this factory cosigned last; refuse otherwise."""
    from dure.cli.files import read_text, write_new
    from dure.client.audit.witness import FactoryWitness
    from dure.policies.checkpoint import Cosigner
    from dure.policies.note import Ed25519Verifier

    if (checkpoint is None) == (url is None):
        raise typer.BadParameter("give exactly one of --checkpoint and --url")
    log_key = Ed25519Verifier.from_vkey(_key_text(public_key))
    witness = FactoryWitness(home, Cosigner.from_skey(read_text(key).strip()), log_key)
    now = int(time.time())
    if url is not None:
        cosigned = _from_url(witness, url, now, submit)
    else:
        assert checkpoint is not None
        note = read_text(checkpoint)
        cosigned = witness.cosign(note, _proof(witness, note, proof), now)
    if out is None:
        sys.stdout.write(cosigned)
    else:
        write_new(out, cosigned.encode("utf-8"), overwrite=True)
    err_console.print(styled(("cosigned", "green"), f" as {witness.cosigner.name}; kept in {home}"))


def _from_url(witness: FactoryWitness, url: str, now: int, submit: bool) -> str:
    from dure.client.audit.witness import WitnessEndpoint

    with WitnessEndpoint(url) as endpoint:
        if not submit:
            return witness.cosign_from(endpoint, now)
        submitted = witness.cosign_pending(endpoint, now)
    err_console.print(f"posted to {url}: {submitted.describe()}")
    return submitted.note


def _proof(witness: FactoryWitness, note: str, path: Path | None) -> list[bytes]:
    import json

    from dure.cli.files import read_text
    from dure.client.audit.errors import WitnessRefusedError
    from dure.client.audit.source import parse_proof

    sizes = witness.proof_needed(note)
    if sizes is None:
        return []
    if path is None:
        raise WitnessRefusedError(
            f"a consistency proof from size {sizes[0]} to {sizes[1]} is needed",
            hint="Pass --proof FILE (from /v1/ledger/proof/consistency), or use --url.",
        )
    try:
        value = json.loads(read_text(path))
    except ValueError as exc:
        raise WitnessRefusedError(f"{path}: the proof is not JSON") from exc
    return parse_proof(value, str(path), {"first": sizes[0], "second": sizes[1]})


def _key_text(value: str) -> str:
    from dure.cli.files import read_text

    path = Path(value)
    try:
        is_file = path.is_file()
    except OSError:
        is_file = False
    return read_text(path).strip() if is_file else value.strip()


def _write_secret(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 and write ``data``; never replace a file."""
    import os

    from dure.cli.files import CliFileError

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise CliFileError(f"{path}: already exists", hint="Dure never overwrites keys.") from exc
    except OSError as exc:
        raise CliFileError(f"{path}: cannot create ({exc.strerror})") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
