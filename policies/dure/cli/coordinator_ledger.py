"""``dure coordinator ledger``: export the audit ledger, verify an export offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dure.cli.output import make_console, styled

__all__ = ["register"]

console = make_console()


def register(coordinator: typer.Typer) -> None:
    """Add the ``ledger`` group to the ``dure coordinator`` group."""
    ledger = typer.Typer(
        help="The audit ledger: export it, verify an export offline.", no_args_is_help=True
    )
    ledger.command("export")(_export)
    ledger.command("verify")(_verify)
    coordinator.add_typer(ledger, name="ledger")


def _export(
    db: Annotated[
        str,
        typer.Option(
            envvar="DURE_LEDGER_DB",
            help="The ledger database: sqlite:///PATH or postgresql://USER@HOST/DB.",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder to write the export into.")],
) -> None:
    """Write entries.jsonl, checkpoint and public-key into OUT for offline verification."""
    from dure.server.ledger.export import export_ledger
    from dure.server.ledger.sql import SqlLedgerStore

    store = SqlLedgerStore.from_url(db, create=False)
    try:
        summary = export_ledger(store, out)
    finally:
        store.close()
    console.print(f"exported {summary.entries} entries to {summary.out}")
    console.print(f"checkpoint {summary.checkpoint.origin} size {summary.checkpoint.size}")
    if summary.unsigned:
        console.print(
            styled((f"{summary.unsigned} newer entries are not signed yet, left out", "yellow"))
        )


def _verify(
    folder: Annotated[Path, typer.Argument(help="A folder written by 'ledger export'.")],
    public_key: Annotated[
        str,
        typer.Option(help="The ledger's verifier key you trust: a file, or the key string."),
    ],
) -> None:
    """Verify an export offline: signature, entry order and validity, Merkle root."""
    from dure.server.ledger.export import verify_export

    result = verify_export(folder, _key_text(public_key))
    table = Table(title=f"ledger {result.checkpoint.origin}: verified", show_header=True)
    table.add_column("entry kind")
    table.add_column("count", justify="right")
    for kind, count in sorted(result.kinds.items()):
        table.add_row(kind, str(count))
    table.add_row(styled(("total", "bold")), styled((str(result.checkpoint.size), "bold")))
    console.print(table)
    console.print(f"root {result.checkpoint.root_hash.hex()}")
    if not result.public_key_matches:
        console.print(
            styled(("note: the export's public-key file differs from the key you gave", "yellow"))
        )


def _key_text(value: str) -> str:
    """Return the key string in file ``value``, or ``value`` itself if it names no file."""
    from dure.cli.files import read_text

    try:
        is_file = Path(value).is_file()
    except OSError:  # e.g. a key string longer than a file name may be
        is_file = False
    return read_text(Path(value)).strip() if is_file else value.strip()
