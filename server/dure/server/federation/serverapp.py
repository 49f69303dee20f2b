"""The coordinator's Flower ``ServerApp``: a thin shim over :class:`Coordinator`.

``create_server_app(build)`` returns a ServerApp whose ``main`` builds the
coordinator and the signed job from the run's ``Context`` (``build``), runs the
job through the ``Grid`` Flower gives it, and keeps a one-line summary per
round in the run's context state.  ``app`` is the deployment entry point
(``serverapp = "dure.server.federation.serverapp:app"``): it builds from the run
config (:func:`~dure.server.federation.deployment.coordinator_from_run_config`).
A simulation passes its own ``build`` with in-memory services.
"""

from __future__ import annotations

from collections.abc import Callable

from flwr.app import ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from dure.policies.dsse import Envelope
from dure.server.federation.coordinator import Coordinator
from dure.server.federation.deployment import coordinator_from_run_config
from dure.server.federation.run import RunReport

__all__ = ["app", "create_server_app", "from_run_config"]

Build = Callable[[Context], tuple[Coordinator, Envelope]]


def from_run_config(context: Context) -> tuple[Coordinator, Envelope]:
    """Build the coordinator and the job from the run config (deployment)."""
    return coordinator_from_run_config(context.run_config)


def create_server_app(
    build: Build = from_run_config, on_report: Callable[[RunReport], None] | None = None
) -> ServerApp:
    """Return the coordinator's ServerApp; ``on_report`` receives the run's report."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        coordinator, job = build(context)
        report = coordinator.run(grid, job)
        context.state["dure-run"] = ConfigRecord(
            {
                "job-id": report.job_id,
                "final-model": report.final_model or "",
                "ledger-size": report.ledger_size,
                "rounds": [f"{r.round}:{r.status}" for r in report.rounds],
            }
        )
        if on_report is not None:
            on_report(report)

    return app


app = create_server_app()
"""The deployment ServerApp: everything comes from the run config."""
