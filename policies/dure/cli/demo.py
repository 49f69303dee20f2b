"""``dure demo``: what the trust kernel does, on a generated consortium.

Three factories sign usage policies (one forbids the job's purpose), the
consortium operator signs a job, every policy is evaluated against it, each
decision is appended to a Merkle log, and the log's signed checkpoint,
inclusion and consistency proofs are verified independently of the writer.
The federated run itself (Flower rounds over simulated factories) is a later
stage of the project; this preview stops at admission.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from dure.policies.entries import LedgerEntry
    from dure.policies.evaluation import Decision
    from dure.policies.job import JobManifest
    from dure.policies.keys import SigningKey
    from dure.policies.policy import UsagePolicy
    from dure.policies.signed import Opened

__all__ = ["register"]

console = Console(highlight=False)
_SITES = ("factory-a", "factory-b", "factory-c")
_ORIGIN = "dure.example/robotics-coop"


@dataclass(frozen=True)
class _Site:
    name: str
    key: SigningKey
    policy: Opened[UsagePolicy]


def register(app: typer.Typer) -> None:
    """Add ``dure demo`` to the top-level command."""
    app.command("demo")(_demo)


def _demo(
    forbid: Annotated[str, typer.Option(help="Site whose policy forbids the job.")] = "factory-c",
) -> None:
    """Show the trust kernel on a generated consortium of three factories."""
    now = datetime.now(UTC).replace(microsecond=0)
    sites = [_signed_site(name, now, forbid=name == forbid) for name in _SITES]
    job = _signed_job(now)
    decisions = {s.name: _admit(s, job.document, now) for s in sites}
    _print_admission(decisions)
    entries = _entries(sites, job, decisions, now)
    _ledger(entries)


def _signed_site(name: str, now: datetime, *, forbid: bool) -> _Site:
    from dure.policies.dsse import Envelope
    from dure.policies.examples import EXAMPLE_PURPOSE, example_policy_value
    from dure.policies.keys import SigningKey
    from dure.policies.policy import UsagePolicy
    from dure.policies.signed import open_document, sign_document

    key = SigningKey.generate()
    value = example_policy_value(name, issued=now)
    if forbid:
        value["prohibition"] = [
            {
                "action": "use",
                "constraint": [
                    {
                        "leftOperand": "purpose",
                        "operator": "isAnyOf",
                        "rightOperand": [EXAMPLE_PURPOSE],
                    }
                ],
            }
        ]
    envelope = sign_document("policy", UsagePolicy.from_value(value), key)
    received = Envelope.from_json(envelope.to_json())
    opened = open_document(received, "policy", UsagePolicy, {key.key_id: key.public})
    return _Site(name, key, opened)


def _signed_job(now: datetime) -> Opened[JobManifest]:
    from dure.policies.dsse import Envelope
    from dure.policies.examples import example_job_value
    from dure.policies.job import JobManifest
    from dure.policies.keys import SigningKey
    from dure.policies.signed import open_document, sign_document

    operator = SigningKey.generate()
    job = JobManifest.from_value(example_job_value(issued=now, members=_SITES))
    envelope = Envelope.from_json(sign_document("job", job, operator).to_json())
    return open_document(envelope, "job", JobManifest, {operator.key_id: operator.public})


def _admit(site: _Site, job: JobManifest, now: datetime) -> Decision:
    from dure.policies.evaluation import RoundContext, evaluate

    context = RoundContext(consortium=job.consortium, now=now, contributors=len(_SITES))
    return evaluate(site.policy.document, job, context)


def _print_admission(decisions: dict[str, Decision]) -> None:
    table = Table(title="Admission before sampling (signed policy vs signed job)")
    for column in ("site", "decision", "checks", "first reason"):
        table.add_column(column)
    for site, decision in decisions.items():
        verdict = "[green]admitted[/]" if decision.allowed else "[red]refused[/]"
        first = decision.denials[0].message if decision.denials else "every check passed"
        table.add_row(site, verdict, str(len(decision.reasons)), first)
    console.print(table)


def _entries(
    sites: list[_Site], job: Opened[JobManifest], decisions: dict[str, Decision], now: datetime
) -> list[LedgerEntry]:
    from dure.policies import entries

    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    expires = job.document.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    out: list[LedgerEntry] = [
        entries.PolicyRegistered(
            time=stamp,
            site=f"urn:dure:site:{s.name}",
            policy_id=s.policy.document_id,
            expires=expires,
        )
        for s in sites
    ]
    out.append(
        entries.JobSigned(
            time=stamp,
            job_id=job.document.job_id,
            job_digest=job.document_id,
            operator_key_id=job.signer.key_id,
            purpose=job.document.purpose,
        )
    )
    for s in sites:
        decision, urn = decisions[s.name], f"urn:dure:site:{s.name}"
        if decision.allowed:
            out.append(
                entries.SiteAdmitted(
                    time=stamp, job_id=job.document.job_id, site=urn, policy_id=s.policy.document_id
                )
            )
        else:
            reasons = tuple(r.message for r in decision.denials)
            out.append(
                entries.SiteRefused(
                    time=stamp,
                    job_id=job.document.job_id,
                    site=urn,
                    policy_id=s.policy.document_id,
                    reasons=reasons,
                )
            )
    return out


def _ledger(entries: list[LedgerEntry]) -> None:
    from dure.policies.checkpoint import (
        Checkpoint,
        check_consistent,
        open_checkpoint,
        sign_checkpoint,
    )
    from dure.policies.merkle import leaf_hash, verify_inclusion
    from dure.policies.note import Ed25519Signer
    from dure.policies.tree import MerkleTree

    signer = Ed25519Signer.generate(_ORIGIN)
    tree = MerkleTree()
    leaves = [entry.to_bytes() for entry in entries]
    for leaf in leaves[:-1]:
        tree.append(leaf)
    first = Checkpoint(_ORIGIN, tree.size, tree.root())
    first_note = sign_checkpoint(first, signer)
    tree.append(leaves[-1])
    note = sign_checkpoint(Checkpoint(_ORIGIN, tree.size, tree.root()), signer)
    verifier = signer.verifier()
    pinned = open_checkpoint(note, verifier)
    for index, leaf in enumerate(leaves):
        proof = tree.inclusion_proof(index, pinned.size)
        verify_inclusion(leaf_hash(leaf), index, pinned.size, proof, pinned.root_hash)
    older = open_checkpoint(first_note, verifier)
    check_consistent(older, pinned, tree.consistency_proof(older.size, pinned.size))
    console.print(f"\nledger: {tree.size} entries; signed checkpoint:")
    console.print(note, soft_wrap=True, markup=False)
    console.print(f"verifier key: {verifier.to_vkey()}", soft_wrap=True, markup=False)
    console.print(
        f"[green]verified[/] checkpoint signature, {len(leaves)} inclusion proofs, "
        f"consistency {older.size} → {pinned.size}"
    )
