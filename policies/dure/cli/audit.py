"""``dure audit``: check the ledger without trusting the coordinator; who learned from whose data.

``dure audit run`` verifies a coordinator (``--url``) or an export folder
(``--export``) against the ledger key you pinned (``--public-key``): checkpoint
signature, witness cosignatures (``--witness``, ``--quorum``), consistency with
the checkpoint kept from your last audit (in ``--home``), the Merkle root of
every entry, your factory's receipts (``--receipts``), and every invariant of
the usage policies (with the signed documents in ``--documents`` and the
consortium operator's key ``--operator-key``; ``--strict`` fails when a check
could not be made).  It exits non-zero naming the first failing entry.
``dure audit usage`` and ``dure audit lineage`` run the same checks, then print
where a site's data went and what is behind a model.  The client is imported
lazily, inside the commands.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dure.cli.audit_render import (
    print_failures,
    print_lineage,
    print_summary,
    print_usage,
    site_urn,
)
from dure.cli.output import make_console

if TYPE_CHECKING:
    from dure.client.audit.auditor import AuditResult
    from dure.client.audit.source import LedgerSource
    from dure.policies.audit.lineage import LineageGraph

__all__ = ["register"]

console = make_console()

Url = Annotated[str | None, typer.Option(help="The coordinator's base URL (read API).")]
Export = Annotated[
    Path | None, typer.Option(help="A folder written by 'dure coordinator ledger export'.")
]
PublicKey = Annotated[
    str,
    typer.Option(help="The ledger key you pinned (name+keyid+base64), or a file holding it."),
]
Home = Annotated[
    Path,
    typer.Option(envvar="DURE_AUDIT_HOME", help="Where the auditor keeps the last checkpoint."),
]
Receipts = Annotated[
    Path | None, typer.Option(help="Your factory's receipts folder (<factory home>/receipts).")
]
Witnesses = Annotated[
    list[str] | None,
    typer.Option("--witness", help="A witness verifier key, or a file holding one (repeatable)."),
]
Quorum = Annotated[
    int | None, typer.Option(help="Cosignatures required (default: every --witness).")
]
Documents = Annotated[
    Path | None,
    typer.Option(help="Folder of signed policies, jobs and site identities (DSSE envelopes)."),
]
OperatorKeys = Annotated[
    list[Path] | None,
    typer.Option("--operator-key", help="The consortium operator's public key PEM (repeatable)."),
]
Strict = Annotated[
    bool, typer.Option(help="Fail when a check cannot be made for lack of documents.")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
DEFAULT_HOME = Path("dure-audit")


def register(app: typer.Typer) -> None:
    """Add the top-level ``audit`` group."""
    audit = typer.Typer(
        help="Check the ledger without trusting the coordinator; see where data went.",
        no_args_is_help=True,
    )
    audit.command("run")(_run)
    audit.command("usage")(_usage)
    audit.command("lineage")(_lineage)
    app.add_typer(audit, name="audit")


def _run(
    public_key: PublicKey,
    url: Url = None,
    export: Export = None,
    site: Annotated[
        str | None, typer.Option(help="Also print where this site's data went.")
    ] = None,
    receipts: Receipts = None,
    witness: Witnesses = None,
    quorum: Quorum = None,
    documents: Documents = None,
    operator_key: OperatorKeys = None,
    home: Home = DEFAULT_HOME,
    strict: Strict = False,
) -> None:
    """Verify the ledger and replay every invariant; exit non-zero at the first failure."""
    result = _audit(
        url, export, public_key, receipts, witness, quorum, documents, operator_key, home, strict
    )
    print_summary(console, result)
    if site is not None and not result.findings:
        print_usage(console, _graph(result).usage(site_urn(site)))
    print_failures(console, result)
    result.raise_for_failure()


def _usage(
    site: Annotated[str, typer.Option(help="The site: a name or urn:dure:site:<name>.")],
    public_key: PublicKey,
    url: Url = None,
    export: Export = None,
    receipts: Receipts = None,
    documents: Documents = None,
    operator_key: OperatorKeys = None,
    home: Home = DEFAULT_HOME,
    json: Json = False,
) -> None:
    """Who learned from my data: every job, round and model it reached, with ε spent."""
    result = _audit(
        url, export, public_key, receipts, None, None, documents, operator_key, home, False
    )
    if not result.findings:
        usage = _graph(result).usage(site_urn(site))
        if json:
            _emit(usage.to_json_value())
        else:
            print_usage(console, usage)
    print_failures(console, result)
    result.raise_for_failure()


def _lineage(
    model: Annotated[str, typer.Option(help="The model digest (64 hex).")],
    public_key: PublicKey,
    url: Url = None,
    export: Export = None,
    documents: Documents = None,
    operator_key: OperatorKeys = None,
    home: Home = DEFAULT_HOME,
    json: Json = False,
) -> None:
    """Every site, policy, round and parent model behind a model."""
    result = _audit(url, export, public_key, None, None, None, documents, operator_key, home, False)
    if not result.findings:
        lineage = _graph(result).lineage(model)
        if json:
            _emit(lineage.to_json_value())
        else:
            print_lineage(console, lineage)
    print_failures(console, result)
    result.raise_for_failure()


def _audit(
    url: str | None,
    export: Path | None,
    public_key: str,
    receipts: Path | None,
    witnesses: list[str] | None,
    quorum: int | None,
    documents: Path | None,
    operator_keys: list[Path] | None,
    home: Path,
    strict: bool,
) -> AuditResult:
    from dure.client.audit.auditor import AuditSettings, run_audit
    from dure.client.audit.evidence import read_documents, read_receipts
    from dure.client.audit.state import CheckpointStore
    from dure.policies.checkpoint import CosignatureVerifier
    from dure.policies.keys import VerifyKey
    from dure.policies.note import Ed25519Verifier

    operators = tuple(VerifyKey.load(path) for path in operator_keys or ())
    settings = AuditSettings(
        log_key=Ed25519Verifier.from_vkey(_key_text(public_key)),
        witnesses=tuple(CosignatureVerifier.from_vkey(_key_text(w)) for w in witnesses or ()),
        quorum=quorum,
        documents=read_documents(documents, operator_keys=operators) if documents else None,
        receipts=tuple(read_receipts(receipts)) if receipts else (),
        strict=strict,
    )
    with ExitStack() as stack:
        source = _source(url, export, stack)
        return run_audit(source, settings, CheckpointStore(home))


def _source(url: str | None, export: Path | None, stack: ExitStack) -> LedgerSource:
    from dure.client.audit.source import ExportLedgerSource, HttpLedgerSource

    if (url is None) == (export is None):
        raise typer.BadParameter("give exactly one of --url and --export")
    if url is not None:
        return stack.enter_context(HttpLedgerSource(url))
    assert export is not None
    return ExportLedgerSource(export)


def _graph(result: AuditResult) -> LineageGraph:
    from dure.policies.audit.lineage import LineageGraph

    return LineageGraph.from_entries(result.entries)


def _emit(value: object) -> None:
    import json

    console.print_json(json.dumps(value))


def _key_text(value: str) -> str:
    """Return the key string in file ``value``, or ``value`` itself if it names no file."""
    from dure.cli.files import read_text

    path = Path(value)
    try:
        is_file = path.is_file()
    except OSError:
        is_file = False
    return read_text(path).strip() if is_file else value.strip()
