"""The coordinator's audit ledger: an RFC 9162 Merkle log on SQL, checkpoints, receipts.

Modules: :mod:`~dure.server.ledger.store` (the storage contract),
:mod:`~dure.server.ledger.memory` and :mod:`~dure.server.ledger.sql` (the stores),
:mod:`~dure.server.ledger.service` (:class:`~dure.server.ledger.service.Ledger`),
:mod:`~dure.server.ledger.export` (offline export and verification).  Import
from those modules; this package re-exports nothing, so importing it loads no
database driver.
"""

__all__: list[str] = []
