"""The scale benchmark's factories are real: signed, registered, ledgered, admitted, loadable."""

from __future__ import annotations

from pathlib import Path

from benchmarks.scale_sim import EPISODES, build_factories
from tests.builders.federation import CONSORTIUM, NOW, node_config

from dure.client.federation.settings import FactorySettings
from dure.client.store.store import EpisodeStore
from dure.policies.identity import open_site_identity
from dure.policies.job import JobManifest
from dure.policies.keys import SigningKey
from dure.policies.signed import open_document
from dure.server.federation.admission import admit
from dure.server.federation.coordinator import ledger_entries
from dure.server.ledger.service import Ledger
from dure.server.ledger.sql import SqlLedgerStore


def test_each_factory_has_its_own_keys_policy_and_store_and_is_admitted(tmp_path: Path) -> None:
    store = SqlLedgerStore.from_url(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger = Ledger(store, SigningKey.generate(), "dure.test/scale")
    consortium = build_factories(tmp_path / "sites", 3, ledger)
    sites = list(consortium.sites.values())
    assert len({site.key.public.key_id for site in sites}) == 3
    for site in sites:
        assert open_site_identity(site.identity).site == site.name
        with EpisodeStore.open(site.home, create=False) as episodes:
            assert len(list(episodes.select())) == EPISODES
        loaded = FactorySettings.from_node_config(node_config(consortium, site))
        assert loaded.site == site.name
        assert loaded.policy.document_id == site.settings.policy.document_id
    kinds = [entry.kind for entry in ledger_entries(ledger)]
    assert kinds == ["site_registered", "policy_registered"] * 3
    operator = consortium.operator
    job = open_document(
        consortium.job(rounds=2), "job", JobManifest, {operator.key_id: operator.public}
    )
    decisions = admit(job.document, consortium.registry.sites(), consortium=CONSORTIUM, now=NOW)
    assert [d.admitted for d in decisions] == [True, True, True]
    store.close()
