"""The factory's receipts: ledger entries about its data, verified and kept on disk.

The coordinator sends receipts with ``train`` instructions and in a final
``query.receipts`` message (JSON list of ``{"entry": base64 leaf bytes,
"receipt": Receipt}``).  :class:`ReceiptBox` keeps one only if

1. the receipt verifies with :func:`~dure.policies.receipt.verify_receipt`
   against the ledger key the factory pinned (checkpoint signature, inclusion
   proof of the exact entry bytes);
2. the entry parses as a canonical ledger entry;
3. the entry is about this site (its admission or refusal, a round it was
   sampled in, its contribution, an aggregate it contributed to).

Kept receipts live in ``<home>/receipts/<index>-<kind>-<job>.json`` (written
atomically; a later receipt for the same entry, against a newer checkpoint,
replaces it; the name lets the ε accounting read only the aggregates of other
jobs).  They are the factory's own evidence of where its data went, and
the input of its ε accounting (:meth:`ReceiptBox.epsilon_spent`).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from dure.client.federation.errors import FederationSetupError
from dure.policies.contribution import epsilon_spent_by
from dure.policies.encoding import b64decode
from dure.policies.entries import (
    AggregateCommitted,
    ContributionAccepted,
    ContributionRejected,
    LedgerEntry,
    RoundOpened,
    SiteAdmitted,
    SiteRefused,
)
from dure.policies.errors import DureError
from dure.policies.receipt import Receipt, verify_receipt

__all__ = ["KeptReceipts", "ReceiptBox", "is_about"]


def is_about(entry: LedgerEntry, site: str) -> bool:
    """Whether ``entry`` concerns the site with URN ``site``."""
    if isinstance(entry, SiteAdmitted | SiteRefused | ContributionAccepted | ContributionRejected):
        return entry.site == site
    if isinstance(entry, AggregateCommitted):
        return site in entry.contributors
    return isinstance(entry, RoundOpened) and site in entry.sites


@dataclass(frozen=True, slots=True)
class KeptReceipts:
    """The outcome of one delivery: how many receipts were kept, and why others were not."""

    kept: int
    problems: tuple[str, ...]


class ReceiptBox:
    """Verified receipts of one site, on disk (see the module docstring).

    Parameters
    ----------
    root
        The folder receipts are kept in (created when needed).
    ledger_key
        The ledger's pinned note verifier key, ``name+keyid+base64``.
    site
        The site's URN.
    """

    def __init__(self, root: Path, ledger_key: str, site: str) -> None:
        self.root = Path(root)
        self.ledger_key = ledger_key
        self.site = site

    def accept(self, receipts_json: str) -> KeptReceipts:
        """Verify and keep every receipt of a delivery; report the ones refused."""
        try:
            items = json.loads(receipts_json) if receipts_json else []
        except ValueError as exc:
            return KeptReceipts(0, (f"receipts are not JSON: {exc}",))
        if not isinstance(items, list):
            return KeptReceipts(0, ("receipts must be a JSON list",))
        problems: list[str] = []
        kept = 0
        for position, item in enumerate(items):
            problem = self._keep(item)
            if problem is None:
                kept += 1
            else:
                problems.append(f"receipt {position}: {problem}")
        return KeptReceipts(kept, tuple(problems))

    def entries(self, kind: str = "*", *, skip_job: str | None = None) -> list[LedgerEntry]:
        """The entries of every kept receipt (of ``kind``, not of ``skip_job``), in order."""
        return [entry for entry, _ in self.receipts(kind, skip_job=skip_job)]

    def epsilon_spent(self, exclude_job: str | None = None) -> Decimal:
        """ε spent on this site's data by the jobs of its kept receipts, but ``exclude_job``."""
        aggregates = self.entries("aggregate_committed", skip_job=exclude_job)
        return epsilon_spent_by(aggregates, self.site, exclude_job=exclude_job)

    def receipts(
        self, kind: str = "*", *, skip_job: str | None = None
    ) -> list[tuple[LedgerEntry, Receipt]]:
        """Every kept receipt (of ``kind``, not of ``skip_job``) with its entry, in order."""
        if not self.root.is_dir():
            return []
        kept = []
        for path in sorted(self.root.glob(f"*-{kind}-*.json")):
            if skip_job is not None and path.name.endswith(f"-{skip_job}.json"):
                continue
            try:
                value = json.loads(path.read_text())
                entry = LedgerEntry.from_bytes(b64decode(value["entry"]))
                receipt = Receipt.from_json(json.dumps(value["receipt"]))
            except (OSError, ValueError, KeyError, TypeError, DureError) as exc:
                raise FederationSetupError(f"{path}: unreadable receipt ({exc})") from exc
            kept.append((entry, receipt))
        return kept

    def _keep(self, item: object) -> str | None:
        try:
            if not isinstance(item, dict):
                return "not an object"
            raw = b64decode(str(item["entry"]))
            receipt = Receipt.from_json(json.dumps(item["receipt"]))
            verify_receipt(receipt, raw, self.ledger_key)
            entry = LedgerEntry.from_bytes(raw)
        except KeyError as exc:
            return f"missing {exc.args[0]!r}"
        except DureError as exc:
            return exc.message
        if not is_about(entry, self.site):
            return f"the {entry.kind} entry {receipt.index} is not about {self.site}"
        job = getattr(entry, "job_id", "none")
        self._write(f"{receipt.index:012d}-{entry.kind}-{job}.json", item)
        return None

    def _write(self, name: str, item: dict[str, object]) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
            with os.fdopen(fd, "w") as handle:
                json.dump(item, handle, sort_keys=True)
            os.replace(temp, self.root / name)
        except OSError as exc:
            raise FederationSetupError(f"cannot keep a receipt in {self.root}: {exc}") from exc
