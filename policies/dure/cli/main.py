"""The ``dure`` command: the one composition root that reaches every role.

Each role's commands live in their own module and are registered here; each
imports the role it runs lazily, inside the command, so ``dure keys new`` never
loads torch or Flower.  Every :class:`~dure.policies.errors.DureError` that
escapes a command is printed as one line plus a hint and exits with the code the
error catalog assigns.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import typer
from typer.core import TyperGroup

from dure.cli.output import make_console, styled
from dure.policies.errors import DureError, outcome_for

__all__ = ["app", "run"]

err_console = make_console(stderr=True)


class _DureGroup(TyperGroup):
    """Top-level group that turns Dure's errors into one line, a hint and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DureError as exc:
            outcome = outcome_for(exc)
            err_console.print(styled(("error:", "bold red"), " ", exc.message), soft_wrap=True)
            err_console.print(styled(("hint:", "dim"), " ", exc.hint), soft_wrap=True)
            raise click.exceptions.Exit(outcome.exit_code) from exc


app = typer.Typer(
    cls=_DureGroup,
    name="dure",
    help="Dure: federated learning on robot data under owner-signed usage policies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="Ed25519 signing keys and site identities.", no_args_is_help=True)
policy_app = typer.Typer(help="Sign, verify and check data-usage policies.", no_args_is_help=True)
job_app = typer.Typer(help="Sign and verify job manifests.", no_args_is_help=True)
factory_app = typer.Typer(
    help="The factory side: episodes, ingest, training.", no_args_is_help=True
)
coordinator_app = typer.Typer(
    help="The consortium coordinator: ledger, jobs.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(policy_app, name="policy")
app.add_typer(job_app, name="job")
app.add_typer(factory_app, name="factory")
app.add_typer(coordinator_app, name="coordinator")


def _register_all() -> None:
    from dure.cli import demo, documents, keys

    keys.register(keys_app)
    documents.register(policy_app, job_app)
    demo.register(app)
    for name, group in (
        ("factory_episodes", factory_app),
        ("factory_ingest", factory_app),
        ("factory_witness", factory_app),
        ("coordinator_ledger", coordinator_app),
        ("coordinator_serve", coordinator_app),
        ("deployment_coordinator", coordinator_app),
        ("deployment_factory", factory_app),
        ("consortium", app),
        ("audit", app),
    ):
        module = _optional(f"dure.cli.{name}")
        if module is not None:
            module.register(group)


def _optional(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


_register_all()


def run() -> None:
    """Entry point of the ``dure`` console script."""
    sys.exit(app())
