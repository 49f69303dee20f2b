"""The auditor's own evidence, read from folders: the factory's receipts, signed documents.

Receipts are the files a factory keeps under ``<home>/receipts/`` (one JSON
object ``{"entry": "<base64 leaf bytes>", "receipt": <Receipt>}`` per file, as
:mod:`dure.client.federation.receipts` writes them).  Signed documents are DSSE
envelope files (policies, jobs, site identities; any file name) in one folder
tree; each is filed under the SHA-256 of its payload, the id the ledger cites.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dure.client.audit.errors import LedgerSourceError
from dure.policies.audit.documents import DocumentSource
from dure.policies.dsse import Envelope
from dure.policies.encoding import b64decode
from dure.policies.errors import DureError
from dure.policies.keys import VerifyKey
from dure.policies.receipt import Receipt

__all__ = ["HeldReceipt", "read_documents", "read_receipts"]


@dataclass(frozen=True, slots=True)
class HeldReceipt:
    """A receipt a factory holds: the file, the exact entry bytes, the receipt."""

    path: Path
    entry: bytes
    receipt: Receipt


def read_receipts(folder: Path) -> list[HeldReceipt]:
    """Read every ``*.json`` receipt in ``folder``, in file-name order.

    Raises
    ------
    LedgerSourceError
        If the folder or a receipt file cannot be read or parsed.
    """
    if not folder.is_dir():
        raise LedgerSourceError(f"{folder}: no receipts folder there")
    return [_receipt(path) for path in sorted(folder.glob("*.json"))]


def _receipt(path: Path) -> HeldReceipt:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(value, dict) or not isinstance(value.get("entry"), str):
            raise LedgerSourceError(f'{path}: expected {{"entry": base64, "receipt": {{...}}}}')
        entry = b64decode(value["entry"])
        receipt = Receipt.from_json(json.dumps(value.get("receipt")), source=str(path))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise LedgerSourceError(f"{path}: unreadable receipt ({reason})") from exc
    except DureError as exc:
        raise LedgerSourceError(f"{path}: unreadable receipt: {exc.message}") from exc
    return HeldReceipt(path, entry, receipt)


def read_documents(
    folder: Path,
    *,
    operator_keys: tuple[VerifyKey, ...] = (),
    site_keys: Mapping[str, VerifyKey] | None = None,
) -> DocumentSource:
    """Read every envelope file under ``folder`` (hidden files skipped) into a source.

    Raises
    ------
    LedgerSourceError
        If the folder is missing, or a file cannot be read or is not an envelope.
    """
    if not folder.is_dir():
        raise LedgerSourceError(f"{folder}: no documents folder there")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    envelopes = [_envelope(path) for path in paths]
    return DocumentSource.from_envelopes(
        envelopes, site_keys=site_keys, operator_keys=operator_keys
    )


def _envelope(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        Envelope.from_json(data)
    except OSError as exc:
        raise LedgerSourceError(f"{path}: cannot read ({exc.strerror})") from exc
    except DureError as exc:
        raise LedgerSourceError(
            f"{path}: not a signed document (DSSE envelope): {exc.message}",
            hint="Put only signed policies, jobs and site identities in --documents.",
        ) from exc
    return data
