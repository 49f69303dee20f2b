"""Rich rendering of audit results: summary, failures, a site's usage, a model's lineage.

Print with a console from :func:`dure.cli.output.make_console`: the ledger's names and
messages are printed literally, never read as markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from dure.cli.output import styled

if TYPE_CHECKING:
    from dure.client.audit.auditor import AuditResult
    from dure.policies.audit.lineage import ModelLineage, SiteUsage

__all__ = ["print_failures", "print_lineage", "print_summary", "print_usage", "site_urn"]


def site_urn(site: str) -> str:
    """Return ``site`` as ``urn:dure:site:<name>`` (a bare name is accepted)."""
    return site if site.startswith("urn:") else f"urn:dure:site:{site}"


def _short(digest: str | None) -> str:
    return f"{digest[:16]}…" if digest else "-"


def print_summary(console: Console, result: AuditResult) -> None:
    """Print what was checked and how it went."""
    table = Table(title="ledger audit", show_header=False)
    table.add_column("check")
    table.add_column("result")
    cp = result.checkpoint
    verdict = styled(("passed", "green")) if result.ok else styled(("FAILED", "bold red"))
    table.add_row("verdict", verdict)
    if cp is not None:
        table.add_row("checkpoint", f"{cp.origin} size {cp.size} root {cp.root_hash.hex()[:16]}…")
    if result.previous is not None:
        table.add_row("kept from last audit", f"size {result.previous.size}")
    if result.quorum is not None:
        table.add_row("witnesses", result.quorum.describe())
    table.add_row("receipts checked", str(result.receipts_checked))
    if result.replay is not None:
        table.add_row("entries replayed", str(result.replay.entries))
        table.add_row("document checks passed", str(result.replay.checked))
        table.add_row("checks not verifiable", str(len(result.replay.unverified)))
    table.add_row("checkpoint kept", "yes" if result.stored else "no")
    console.print(table)


def print_failures(console: Console, result: AuditResult) -> None:
    """Print every failure (and unverifiable check) as a table, if there is any."""
    rows: list[tuple[str, str, str]] = [
        ("-" if f.index is None else str(f.index), f.check, f.message) for f in result.findings
    ]
    if result.replay is not None:
        rows += [(str(v.index), v.code, v.message) for v in result.replay.violations]
        rows += [
            (str(u.index), f"unverified {u.check}", u.reason) for u in result.replay.unverified
        ]
    if not rows:
        return
    table = Table(title="findings", show_lines=False)
    table.add_column("entry", justify="right")
    table.add_column("check")
    table.add_column("what", overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def print_usage(console: Console, usage: SiteUsage) -> None:
    """Print who learned from ``usage.site``'s data."""
    table = Table(title=f"who learned from {usage.site}'s data")
    for column in ("entry", "time", "job", "round", "policy", "model", "ε (job total)", "examples"):
        table.add_column(column)
    for r in usage.records:
        table.add_row(
            str(r.index),
            r.time.strftime("%Y-%m-%d %H:%M"),
            r.job_id,
            str(r.round),
            _short(r.policy_id),
            _short(r.model_digest),
            r.epsilon_spent or "-",
            "-" if r.examples is None else str(r.examples),
        )
    console.print(table)
    console.print(f"models holding the data (derived ones included): {len(usage.models)}")
    for model in usage.models:
        console.print(f"  {model}")
    for policy, spent in usage.epsilon_by_policy.items():
        console.print(f"ε spent under policy {_short(policy)}: {spent}")
    console.print(f"ε spent in total: {usage.epsilon_total}")


def print_lineage(console: Console, lineage: ModelLineage) -> None:
    """Print every round, site, policy and parent behind ``lineage.model``."""
    table = Table(title=f"lineage of model {_short(lineage.model)}")
    for column in ("model", "job", "round", "contributors (policy)", "ε"):
        table.add_column(column)
    for node in lineage.chain:
        contributors = ", ".join(f"{c.site} ({_short(c.policy_id)})" for c in node.contributions)
        table.add_row(
            _short(node.model_digest),
            node.job_id,
            str(node.round),
            contributors,
            node.epsilon_spent or "-",
        )
    console.print(table)
    console.print(f"sites: {', '.join(lineage.sites) or '-'}")
    console.print(f"base model: {lineage.base_model or 'none (trained from scratch)'}")
