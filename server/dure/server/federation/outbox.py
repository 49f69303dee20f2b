"""Receipts owed to the factories: which ledger entries concern which site.

After each ledger batch the coordinator records here which entries concern
which site (its admission or refusal, its accepted or rejected contribution in
each round it was sampled in, each aggregate it contributed to).  When a
message next goes to that site, :meth:`ReceiptOutbox.drain` issues a receipt
for each (the RFC 9162 inclusion proof against the latest signed checkpoint)
and returns them as the JSON list carried in the message's ``"receipts"``
config value::

    [{"entry": "<base64 of the exact leaf bytes>", "receipt": <Receipt JSON object>}, ...]

Delivery: with the next ``train`` instruction to the site, and, for what is
still owed when the run ends, in a final ``query.receipts`` message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from dure.policies.encoding import b64encode
from dure.policies.entries import (
    AggregateCommitted,
    ContributionAccepted,
    ContributionRejected,
    LedgerEntry,
    SiteAdmitted,
    SiteRefused,
)
from dure.server.ledger.service import Ledger

__all__ = ["ReceiptOutbox", "concerned_sites"]


def concerned_sites(entry: LedgerEntry) -> tuple[str, ...]:
    """Return the URNs of the sites ``entry`` is about."""
    if isinstance(entry, SiteAdmitted | SiteRefused | ContributionAccepted | ContributionRejected):
        return (entry.site,)
    if isinstance(entry, AggregateCommitted):
        return entry.contributors
    return ()


class ReceiptOutbox:
    """Entries owed to each site as receipts, issued on demand from ``ledger``."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._owed: dict[str, list[tuple[int, bytes]]] = {}

    def record(
        self,
        first_index: int,
        entries: Sequence[LedgerEntry],
        leaves: Sequence[bytes] | None = None,
    ) -> None:
        """Note the sites concerned by ``entries``, appended from ``first_index`` on.

        ``leaves`` are the entries' bytes when the caller has them already.
        """
        raw = list(leaves) if leaves is not None else [entry.to_bytes() for entry in entries]
        for offset, entry in enumerate(entries):
            for site in concerned_sites(entry):
                self._owed.setdefault(site, []).append((first_index + offset, raw[offset]))

    def owed(self) -> list[str]:
        """The sites that are owed receipts."""
        return sorted(site for site, items in self._owed.items() if items)

    def drain(self, site: str) -> str:
        """Issue and return (as JSON) every receipt owed to ``site``; forget them."""
        items = self._owed.pop(site, [])
        receipts = [
            {
                "entry": b64encode(entry),
                "receipt": json.loads(self._ledger.receipt(index).to_json()),
            }
            for index, entry in items
        ]
        return json.dumps(receipts)
