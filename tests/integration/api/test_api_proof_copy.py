"""Through the app, proofs come from the workers' memory copy and follow a growing ledger."""

from __future__ import annotations

import base64

from tests.builders.api import World
from tests.builders.ledger import sample_entries

from dure.policies.merkle import leaf_hash, root_hash, verify_consistency, verify_inclusion


def test_proofs_verify_at_every_size_while_the_ledger_grows(any_world: World) -> None:
    ledger, client = any_world.services.ledger, any_world.client
    previous = 0
    for _ in range(4):
        ledger.append_all(sample_entries())  # another writer: the copy learns of it by size
        size = ledger.store.size()
        leaves = ledger.store.entries(0, size)
        for index in (0, size // 2, size - 1):
            body = client.get(f"/v1/ledger/proof/inclusion?index={index}&size={size}").json()
            proof = [base64.b64decode(h) for h in body["hashes"]]
            verify_inclusion(leaf_hash(leaves[index]), index, size, proof, root_hash(leaves))
        if previous:
            body = client.get(f"/v1/ledger/proof/consistency?first={previous}&second={size}")
            proof = [base64.b64decode(h) for h in body.json()["hashes"]]
            verify_consistency(
                previous, size, proof, root_hash(leaves[:previous]), root_hash(leaves)
            )
        assert f"dure_proof_copy_entries {float(size)}" in client.get("/metrics").text
        previous = size
    beyond = client.get(f"/v1/ledger/proof/inclusion?index=0&size={previous + 1}")
    assert (beyond.status_code, beyond.json()["code"]) == (400, "kernel.proof_request")
