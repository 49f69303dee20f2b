"""``dure policy`` and ``dure job``: sign, verify and check signed documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from dure.cli.output import make_console, styled
from dure.policies.errors import DureError

if TYPE_CHECKING:
    from dure.policies.evaluation import Decision, RoundContext
    from dure.policies.job import JobManifest
    from dure.policies.keys import VerifyKey
    from dure.policies.signed import DocT, Opened, SignableDocument

__all__ = ["PolicyDeniedError", "register"]

console = make_console()

Signers = Annotated[
    list[Path], typer.Option("--signer", help="Trusted signer public key (repeatable).")
]


class PolicyDeniedError(DureError):
    """A job that the policy does not allow (the decision lists every reason)."""

    code = "cli.denied"
    default_hint = "Change the job, or ask the data owner for a policy that allows it."


def register(policy: typer.Typer, job: typer.Typer) -> None:
    """Add the commands to the ``dure policy`` and ``dure job`` groups."""
    policy.command("template")(_policy_template)
    policy.command("sign")(_policy_sign)
    policy.command("verify")(_policy_verify)
    policy.command("check")(_policy_check)
    policy.command("revoke")(_policy_revoke)
    job.command("template")(_job_template)
    job.command("sign")(_job_sign)
    job.command("verify")(_job_verify)


def _policy_template(
    site: Annotated[str, typer.Option(help="The data owner's site id.")] = "factory-a",
    consortium: Annotated[str, typer.Option(help="The consortium's id.")] = "robotics-coop",
) -> None:
    """Print an example usage policy, valid for a year from now, to edit and sign."""
    from dure.policies.examples import example_policy_value

    value = example_policy_value(site, consortium=consortium, issued=_now())
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _job_template(
    consortium: Annotated[str, typer.Option(help="The consortium's id.")] = "robotics-coop",
    task: Annotated[str, typer.Option(help="The task the job trains on.")] = "pick-place",
) -> None:
    """Print an example job manifest, issued now, to edit and sign."""
    from dure.policies.examples import example_job_value
    from dure.policies.job import DEFAULT_TRAINING, JobManifest

    value = example_job_value(consortium=consortium, task=task, issued=_now())
    value["training"] = DEFAULT_TRAINING.model_dump(mode="json")  # signed with the job
    full = JobManifest.from_value(value).to_json_value()
    typer.echo(json.dumps(full, indent=2, ensure_ascii=False))


def _policy_sign(
    document: Annotated[Path, typer.Argument(help="The policy as JSON.")],
    key: Annotated[Path, typer.Option(help="The data owner's Ed25519 private key.")],
    out: Annotated[Path, typer.Option(help="Where to write the signed envelope.")],
) -> None:
    """Sign a usage policy; prints its policy id (SHA-256 of its canonical bytes)."""
    from dure.policies.errors import DocumentError
    from dure.policies.evaluation import vocabulary_problems
    from dure.policies.policy import UsagePolicy

    policy = UsagePolicy.from_json_bytes(_read(document), source=str(document))
    problems = vocabulary_problems(policy)
    if problems:
        raise DocumentError(
            f"{document}: {problems[0].message}",
            hint="This policy could only ever deny; use the terms in docs/policy-language.md.",
        )
    _sign("policy", policy, key, out)


def _policy_revoke(
    envelope: Annotated[Path, typer.Argument(help="The signed policy to revoke.")],
    key: Annotated[Path, typer.Option(help="The data owner's Ed25519 private key.")],
    out: Annotated[Path, typer.Option(help="Where to write the signed revocation.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the ledger).")],
    mode: Annotated[
        str, typer.Option(help="exclude-future, or retrain-without if the policy promised it.")
    ] = "exclude-future",
) -> None:
    """Sign the revocation of one of this site's policies (send it to the coordinator)."""
    from dure.cli.files import load_signing_key
    from dure.policies.errors import DocumentError
    from dure.policies.policy import UsagePolicy
    from dure.policies.revocation import Revocation, effective_mode
    from dure.policies.terms import REVOCATION_MODES

    if mode not in REVOCATION_MODES:
        raise DocumentError(
            f"--mode {mode!r} is not a revocation mode",
            hint=f"Use one of {', '.join(REVOCATION_MODES)}.",
        )
    signing = load_signing_key(key)
    opened = _open_with(envelope, "policy", UsagePolicy, {signing.key_id: signing.public})
    revocation = Revocation.from_value(
        {
            "type": "dure/revocation/v1",
            "site": opened.document.site,
            "policy_id": opened.document_id,
            "issued": _now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "mode": mode,
            "reason": reason,
        }
    )
    granted = effective_mode(opened.document, revocation)
    if granted != mode:
        console.print(
            styled((f"the policy promised only {granted}; that is what this means", "yellow"))
        )
    _sign("revocation", revocation, key, out)


def _job_sign(
    document: Annotated[Path, typer.Argument(help="The job manifest as JSON.")],
    key: Annotated[Path, typer.Option(help="The consortium operator's Ed25519 private key.")],
    out: Annotated[Path, typer.Option(help="Where to write the signed envelope.")],
) -> None:
    """Sign a job manifest; prints its digest."""
    from dure.policies.job import JobManifest

    manifest = JobManifest.from_json_bytes(_read(document), source=str(document))
    _check_runnable(manifest)
    _sign("job", manifest, key, out)


def _check_runnable(job: JobManifest) -> None:
    """Refuse a job the coordinator cannot run as signed (strategy, params, DP mode)."""
    from dure.server.federation.aggregation import check_job_supported

    check_job_supported(job)


def _policy_verify(envelope: Annotated[Path, typer.Argument()], signer: Signers) -> None:
    """Verify a signed policy against trusted keys and summarise it."""
    from dure.policies.policy import UsagePolicy

    opened = _open(envelope, "policy", UsagePolicy, signer)
    policy = opened.document
    console.print(
        styled(("valid", "green"), " policy of ", (policy.site, "bold"), f" ({policy.label})")
    )
    _print_ids(opened)


def _job_verify(envelope: Annotated[Path, typer.Argument()], signer: Signers) -> None:
    """Verify a signed job manifest against trusted keys; refuse an expired one."""
    from dure.policies.errors import ExpiredError
    from dure.policies.job import JobManifest

    opened = _open(envelope, "job", JobManifest, signer)
    job = opened.document
    if job.expires <= _now():
        raise ExpiredError(f"job {job.job_id} expired at {job.expires:%Y-%m-%dT%H:%M:%SZ}")
    _check_runnable(job)
    console.print(
        styled(
            ("valid", "green"),
            " job ",
            (job.job_id, "bold"),
            f": {job.purpose}, {job.rounds} rounds",
        )
    )
    _print_ids(opened)


def _policy_check(
    envelope: Annotated[Path, typer.Argument(help="The signed policy.")],
    signer: Signers,
    job: Annotated[Path, typer.Option(help="The signed job manifest.")],
    operator: Annotated[list[Path], typer.Option(help="Trusted operator key (repeatable).")],
    at: Annotated[str | None, typer.Option(help="Evaluate at this UTC time (RFC 3339).")] = None,
    round_: Annotated[int, typer.Option("--round", help="Round number; 0 = admission.")] = 0,
    contributors: Annotated[int | None, typer.Option(help="Replies aggregated.")] = None,
    epsilon_spent: Annotated[str, typer.Option(help="ε spent by other jobs.")] = "0",
    revoked: Annotated[bool, typer.Option(help="Treat the policy as revoked.")] = False,
) -> None:
    """Check a signed policy against a signed job; print the decision with every reason."""
    from dure.policies.evaluation import evaluate
    from dure.policies.job import JobManifest
    from dure.policies.policy import UsagePolicy

    policy = _open(envelope, "policy", UsagePolicy, signer).document
    manifest = _open(job, "job", JobManifest, operator).document
    context = _context(manifest.consortium, at, round_, contributors, epsilon_spent, revoked)
    decision = evaluate(policy, manifest, context)
    _print_decision(decision)
    if not decision.allowed:
        raise PolicyDeniedError(f"{len(decision.denials)} check(s) deny job {manifest.job_id}")


def _context(
    consortium: str,
    at: str | None,
    round_: int,
    contributors: int | None,
    epsilon_spent: str,
    revoked: bool,
) -> RoundContext:
    from dure.policies.errors import DocumentError
    from dure.policies.evaluation import RoundContext

    try:
        now = datetime.fromisoformat(at.replace("Z", "+00:00")) if at else _now()
        spent = Decimal(epsilon_spent)
        return RoundContext(
            consortium=consortium,
            now=now,
            round=round_,
            contributors=contributors,
            epsilon_spent=spent,
            revoked=revoked,
        )
    except (ValueError, InvalidOperation) as exc:
        raise DocumentError(
            f"invalid round context: {exc}",
            hint="--at takes e.g. 2026-11-22T10:00:00Z; --epsilon-spent a decimal.",
        ) from exc


def _print_decision(decision: Decision) -> None:
    table = Table(title="allowed" if decision.allowed else "denied", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("reason")
    for reason in decision.reasons:
        mark = styled(("ok", "green")) if reason.ok else styled(("deny", "red"))
        table.add_row(reason.code, mark, reason.message)
    console.print(table)
    if decision.allowed:
        console.print(f"episodes: {decision.selector.describe()}")


def _sign(kind: str, document: SignableDocument, key_path: Path, out: Path) -> None:
    from dure.cli.files import load_signing_key, write_new
    from dure.policies.signed import document_id, sign_document

    envelope = sign_document(kind, document, load_signing_key(key_path))
    write_new(out, envelope.to_json())
    console.print(f"signed {kind} written to {out}")
    console.print(f"{kind} id {document_id(envelope.payload)}")


def _open(path: Path, kind: str, model: type[DocT], signers: list[Path]) -> Opened[DocT]:
    return _open_with(path, kind, model, _trusted(signers))


def _open_with(
    path: Path, kind: str, model: type[DocT], trusted: dict[str, VerifyKey]
) -> Opened[DocT]:
    from dure.policies.dsse import Envelope
    from dure.policies.signed import open_document

    return open_document(Envelope.from_json(_read(path)), kind, model, trusted)


def _trusted(paths: list[Path]) -> dict[str, VerifyKey]:
    from dure.policies.keys import VerifyKey

    if not paths:
        raise typer.BadParameter("give at least one trusted key with --signer / --operator")
    keys = [VerifyKey.load(p) for p in paths]
    return {k.key_id: k for k in keys}


def _print_ids(opened: Opened[DocT]) -> None:
    console.print(f"id     {opened.document_id}")
    console.print(f"signer {opened.signer.key_id}")


def _read(path: Path) -> bytes:
    from dure.cli.files import read_bytes

    return read_bytes(path)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
