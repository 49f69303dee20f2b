"""``dure coordinator serve`` and ``dure coordinator db upgrade``: run the coordinator API.

``serve`` builds :class:`~dure.server.settings.ServiceSettings` from ``DURE_*``
variables overridden by its options, refuses a database whose schema is not at
the code's revision (run ``db upgrade`` first, or pass ``--upgrade``), and runs
the FastAPI app under uvicorn with JSON logs.  With ``--workers N`` each worker
builds the app from the same settings (passed down as ``DURE_*`` variables).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from dure.cli.output import make_console

__all__ = ["register"]

console = make_console(stderr=True)

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="The coordinator database: sqlite:///PATH or postgresql://USER@HOST/DB "
        "(default: DURE_DB, else sqlite:///dure-coordinator.db).",
    ),
]


def register(coordinator: typer.Typer) -> None:
    """Add ``serve`` and the ``db`` group to the ``dure coordinator`` group."""
    coordinator.command("serve")(_serve)
    db = typer.Typer(help="The coordinator database: schema migrations.", no_args_is_help=True)
    db.command("upgrade")(_upgrade)
    db.command("current")(_current)
    coordinator.add_typer(db, name="db")


def _serve(
    db: Db = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    ledger_key: Annotated[
        Path | None, typer.Option(help="Ed25519 key signing checkpoints (DURE_LEDGER_KEY).")
    ] = None,
    ledger_name: Annotated[
        str | None, typer.Option(help="Checkpoint origin and note key name (DURE_LEDGER_NAME).")
    ] = None,
    operator_key: Annotated[
        list[str] | None,
        typer.Option(help="Operator public key (PEM file or base64); repeat for several."),
    ] = None,
    consortium: Annotated[
        str | None, typer.Option(help="urn:dure:consortium:<name> (DURE_CONSORTIUM).")
    ] = None,
    open_registration: Annotated[
        bool | None,
        typer.Option("--open-registration/--no-open-registration", help="Sites self-register."),
    ] = None,
    witness_key: Annotated[
        list[str] | None,
        typer.Option(help="Witness verifier key (cosignature/v1) or a file holding one; repeat."),
    ] = None,
    witness_quorum: Annotated[
        int | None,
        typer.Option(help="Cosignatures a checkpoint needs to be published (0: at once)."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes.")] = 1,
    upgrade: Annotated[bool, typer.Option(help="Migrate the database first.")] = False,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Serve the coordinator API (registry, jobs, rounds, lineage, ledger) over HTTP."""
    import uvicorn

    from dure.server.api.observability import configure_logging
    from dure.server.settings import ServiceSettings

    settings = ServiceSettings.from_env(
        db_url=db,
        ledger_key=ledger_key,
        ledger_name=ledger_name,
        operator_keys=tuple(operator_key) if operator_key else None,
        consortium=consortium,
        open_registration=open_registration,
        log_level=log_level.upper(),
        witness_keys=tuple(witness_key) if witness_key else None,
        witness_quorum=witness_quorum,
    )
    _check_schema(_checked_url(settings.db_url), upgrade)
    configure_logging(settings.log_level)
    options = {"host": host, "port": port, "log_config": None, "access_log": False}
    console.print(
        f"coordinator API on http://{host}:{port} (database {_redacted(settings.db_url)})"
    )
    if workers == 1:
        import gc

        from dure.server.api.app import create_app

        app = create_app(settings)
        gc.collect()
        gc.freeze()  # the app's long-lived objects leave the collector's scans: steadier latency
        uvicorn.run(app, **options)  # type: ignore[arg-type]
        return
    os.environ.update(_environment(settings))
    uvicorn.run("dure.server.api.app:app_from_env", factory=True, workers=workers, **options)  # type: ignore[arg-type]


def _upgrade(
    db: Db = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Create or migrate the coordinator database's tables (alembic) to REVISION."""
    from dure.server.settings import ServiceSettings
    from dure.server.storage.migrate import upgrade

    url = _checked_url(ServiceSettings.from_env(db_url=db).db_url)
    at = upgrade(url, revision)
    console.print(f"database {_redacted(url)} at revision {at}")


def _current(db: Db = None) -> None:
    """Print the schema revision of the database and the one this code expects."""
    from dure.server.settings import ServiceSettings
    from dure.server.storage.migrate import current_revision, head_revision

    url = _checked_url(ServiceSettings.from_env(db_url=db).db_url)
    console.print(f"database {current_revision(url)}, code {head_revision()}")


def _checked_url(url: str) -> str:
    from dure.server.ledger.engine import check_database_url, normalise_url

    check_database_url(normalise_url(url))
    return url


def _check_schema(url: str, upgrade: bool) -> None:
    from dure.server.storage.errors import StorageError
    from dure.server.storage.migrate import current_revision, head_revision
    from dure.server.storage.migrate import upgrade as migrate

    if upgrade:
        migrate(url)
    current, head = current_revision(url), head_revision()
    if current != head:
        raise StorageError(
            f"database {_redacted(url)} is at schema revision {current}, the code needs {head}",
            hint=f"Run 'dure coordinator db upgrade --db {_redacted(url)}' (or serve --upgrade).",
        )


def _environment(settings: object) -> dict[str, str]:
    from dure.server.settings import ServiceSettings

    assert isinstance(settings, ServiceSettings)
    values = {
        "DURE_DB": settings.db_url,
        "DURE_LEDGER_NAME": settings.ledger_name,
        "DURE_OPERATOR_KEYS": ",".join(settings.operator_keys),
        "DURE_CONSORTIUM": settings.consortium,
        "DURE_OPEN_REGISTRATION": str(settings.open_registration).lower(),
        "DURE_LOG_LEVEL": settings.log_level,
        "DURE_TOKEN_SECRET": settings.token_secret or os.urandom(32).hex(),
        "DURE_WITNESS_KEYS": ",".join(settings.witness_keys),
        "DURE_WITNESS_QUORUM": str(settings.witness_quorum),
    }
    if settings.ledger_key is not None:
        values["DURE_LEDGER_KEY"] = str(settings.ledger_key)
    return values


def _redacted(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # a malformed URL is reported by the database layer
        return url
