"""Schema migrations of the coordinator database, with alembic.

The migration scripts live in ``dure/server/migrations`` (an alembic script
directory shipped inside the package); this module builds the alembic config
in code, so no ``alembic.ini`` is needed: ``dure coordinator db upgrade --db URL``
calls :func:`upgrade`.  The first revision creates the ledger's and the
registry's tables and the ledger's head row.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError

from dure.server.storage.database import Database
from dure.server.storage.errors import StorageError

__all__ = ["MIGRATIONS", "alembic_config", "current_revision", "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
"""The alembic script directory."""


def alembic_config(url: str) -> Config:
    """An alembic config for the database at ``url`` (passed to env.py, not interpolated)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate the database at ``url`` to ``revision``; return the revision it is at.

    Raises
    ------
    StorageError
        If the database cannot be reached or a migration fails.
    """
    try:
        command.upgrade(alembic_config(url), revision)
    except DBAPIError as exc:
        raise StorageError(f"migration failed: {str(exc.orig).strip()[:300]}") from exc
    return current_revision(url)


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (``None``: never migrated)."""
    db = Database.from_url(url)
    try:
        with db.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        raise StorageError(
            f"cannot read the schema revision: {str(exc.orig).strip()[:300]}"
        ) from exc
    finally:
        db.close()


def head_revision() -> str | None:
    """The newest revision the installed code knows."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
