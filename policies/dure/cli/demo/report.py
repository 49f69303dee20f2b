"""The demo's report: rich tables for a person, ``summary.json`` for a machine."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from dure.cli.output import styled
from dure.policies.audit.lineage import LineageGraph
from dure.policies.entries import LedgerEntry

__all__ = [
    "DemoReport",
    "print_admission",
    "print_success",
    "print_usage",
    "usage_by_site",
]

Rates = dict[str, float]


@dataclass
class DemoReport:
    """Everything ``summary.json`` holds (the issue's documented shape)."""

    sites: dict[str, dict[str, Any]] = field(default_factory=dict)
    federated: Rates = field(default_factory=dict)
    pooled: Rates = field(default_factory=dict)
    rounds: int = 0
    dp: dict[str, float] | None = None
    ledger_size: int = 0
    export_dir: str = ""
    wall_s: float = 0.0

    def to_json_value(self) -> dict[str, Any]:
        """The summary as JSON."""
        return {
            "sites": self.sites,
            "success": {"federated": self.federated, "pooled": self.pooled},
            "rounds": self.rounds,
            "dp": self.dp,
            "ledger": {"size": self.ledger_size, "export_dir": self.export_dir},
            "wall_s": round(self.wall_s, 1),
        }

    def write(self, out: Path) -> Path:
        """Write ``summary.json`` in ``out``."""
        path = out / "summary.json"
        path.write_text(json.dumps(self.to_json_value(), indent=2) + "\n", encoding="utf-8")
        return path


def _mean(rates: Mapping[str, float]) -> float:
    return sum(rates.values()) / len(rates) if rates else 0.0


def print_success(console: Console, report: DemoReport, tasks: Sequence[str]) -> None:
    """Per-task success of the federated, pooled and local-only models."""
    table = Table(title="Success rate on fresh layouts (info['success'] at any step)")
    table.add_column("task", no_wrap=True)
    table.add_column("fed.", justify="right")
    table.add_column("pooled", justify="right")
    local = {name: site["local_only_success"] for name, site in report.sites.items()}
    for name in local:
        table.add_column(f"{name.removeprefix('factory-')} only", justify="right")
    for task in tasks:
        row = [task.removesuffix("-v3"), _pct(report.federated.get(task))]
        row.append(_pct(report.pooled.get(task)))
        row += [_pct(rates.get(task)) for rates in local.values()]
        table.add_row(*row)
    row = ["mean", _pct(_mean(report.federated)), _pct(_mean(report.pooled))]
    row += [_pct(_mean({t: r[t] for t in tasks if t in r})) for r in local.values()]
    table.add_row(*row, style="bold")
    console.print(table)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def usage_by_site(entries: Sequence[LedgerEntry], sites: Sequence[str]) -> dict[str, Any]:
    """Who learned from each site's data, from the ledger entries alone."""
    graph = LineageGraph.from_entries(enumerate(entries))
    return {site: graph.usage(f"urn:dure:site:{site}") for site in sites}


def print_usage(console: Console, usage: Mapping[str, Any]) -> None:
    """'Who learned from my data', one row per factory."""
    table = Table(title="Who learned from my data (replayed from the verified ledger)")
    for column in ("factory", "jobs", "rounds", "models reached", "ε spent"):
        table.add_column(column)
    for site, record in usage.items():
        rounds = sorted({r.round for r in record.records})
        span = f"{rounds[0]} to {rounds[-1]} ({len(rounds)})" if rounds else "none"
        epsilon = record.epsilon_total
        table.add_row(
            site,
            ", ".join(record.jobs) or "none",
            span,
            str(len(record.models)),
            f"{epsilon}" if epsilon else "—",
        )
    console.print(table)


def print_admission(console: Console, report: DemoReport) -> None:
    """Admission before sampling, with the reasons of each refusal."""
    table = Table(title="Admission before sampling (each site's signed policy vs the signed job)")
    for column in ("factory", "tasks", "episodes", "decision", "reasons"):
        table.add_column(column)
    for name, site in report.sites.items():
        verdict = styled(("admitted", "green")) if site["admitted"] else styled(("refused", "red"))
        table.add_row(
            name,
            ", ".join(site["tasks"]),
            str(site["episodes"]),
            verdict,
            "\n".join(site["reasons"]) or "every check passed",
        )
    console.print(table)
