"""A whole run through Flower's own Simulation Engine (Ray): real SuperNodes, real transport.

The ServerApp runs the coordinator in Flower's server thread; each virtual
SuperNode runs the factory ClientApp in a Ray worker process, which loads the
site's keys and signed policy from the files its node config names.  One site's
policy forbids the job's purpose: it is refused before sampling and never
receives a train message.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.builders.federation import build_consortium, fixed_now, linear_trainer, node_config
from tests.integration.federation.test_rounds import SITES, _forbidding

from dure.client.federation.clientapp import create_client_app, settings_by_partition
from dure.policies.contribution import state_digest
from dure.server.federation.run import RunReport
from dure.server.federation.serverapp import create_server_app

pytest.importorskip("ray", reason="the Simulation Engine needs flwr[simulation]")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_run_through_the_simulation_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flwr.simulation import run_simulation

    monkeypatch.setenv("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # silences a FutureWarning

    consortium = build_consortium(tmp_path, SITES, policy=_forbidding)
    configs = [node_config(consortium, site) for site in consortium.sites.values()]
    client_app = create_client_app(settings_by_partition(configs), linear_trainer, fixed_now)
    reports: list[RunReport] = []
    server_app = create_server_app(
        lambda _context: (
            consortium.coordinator(connect_wait=60.0, round_timeout=120.0, poll=0.05),
            consortium.job(rounds=2),
        ),
        on_report=reports.append,
    )
    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=len(SITES),
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
    )
    (report,) = reports
    assert [r.status for r in report.rounds] == ["committed", "committed"]
    assert all(len(r.contributors) == 3 for r in report.rounds)
    assert "urn:dure:site:factory-d" not in report.admitted
    (refused,) = consortium.of_kind("site_refused")
    assert refused.site == "urn:dure:site:factory-d"
    assert report.final_model is not None
    assert state_digest(consortium.models.get(report.final_model)) == report.final_model
    for name in SITES[:3]:
        kept = list(
            consortium.sites[name].settings.receipts_dir.glob("*-contribution_accepted-*.json")
        )
        assert len(kept) == 2, name
    assert not list(consortium.sites["factory-d"].settings.receipts_dir.glob("*.json"))
