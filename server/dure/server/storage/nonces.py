"""Nonces of signed requests: each may be used once while its window is open.

A signed request carries a random nonce and a timestamp; the API accepts it
only within a window around its timestamp.  :meth:`SqlNonceStore.claim`
records the nonce until that window has passed (its primary key makes a second
claim fail even between concurrent API workers); older nonces are deleted as
new ones arrive, since a request that old is refused by its timestamp anyway.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert
from sqlalchemy.exc import IntegrityError

from dure.server.storage.database import Database
from dure.server.storage.tables import NonceRow

__all__ = ["SqlNonceStore"]

_NONCE = NonceRow.__table__  # type: ignore[attr-defined]


class SqlNonceStore:
    """Single-use nonces in the coordinator database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, nonce: str, key_id: str, *, expires: int, now: int) -> bool:
        """Record ``nonce`` until ``expires`` (Unix seconds); False if it was already used.

        Nonces whose expiry is before ``now`` are purged in the same transaction.
        """

        def work(conn: Connection) -> None:
            conn.execute(delete(_NONCE).where(_NONCE.c.expires < now))
            conn.execute(insert(_NONCE).values(nonce=nonce, key_id=key_id, expires=expires))

        try:
            self._db.run(work, write=True)
        except IntegrityError:
            return False
        return True
