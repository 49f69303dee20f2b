"""Checkpoint notes: signing, opening, cosigning and cosignature checks, in µs per call."""

from __future__ import annotations

import time
from collections.abc import Callable

from dure.policies.checkpoint import (
    Checkpoint,
    Cosigner,
    add_cosignature,
    open_checkpoint,
    sign_checkpoint,
    verify_cosignatures,
)
from dure.policies.encoding import sha256
from dure.policies.note import Ed25519Signer, SignedNote

ROUNDS = 2_000
WITNESSES = 3
NOW = 1_767_225_600


def _mean_us(call: Callable[[], object], rounds: int = ROUNDS) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        call()
    return (time.perf_counter() - started) / rounds * 1e6


def main() -> dict[str, float]:
    log = Ed25519Signer.generate("dure.example/ledger")
    witnesses = [Cosigner.generate(f"factory-{i}.example/witness") for i in range(WITNESSES)]
    checkpoint = Checkpoint(log.name, 1_000_000, sha256(b"root"))
    signed = sign_checkpoint(checkpoint, log)
    cosigned = signed
    for witness in witnesses:
        cosigned = add_cosignature(cosigned, witness.cosign(checkpoint, NOW))
    log_key, witness_keys = log.verifier(), [w.verifier() for w in witnesses]
    body = checkpoint.to_text()
    figures = {
        "checkpoint_to_text_us": _mean_us(checkpoint.to_text),
        "checkpoint_from_text_us": _mean_us(lambda: Checkpoint.from_text(body)),
        "note_from_text_us": _mean_us(lambda: SignedNote.from_text(cosigned)),
        "sign_checkpoint_us": _mean_us(lambda: sign_checkpoint(checkpoint, log)),
        "open_checkpoint_us": _mean_us(lambda: open_checkpoint(signed, log_key)),
        "open_cosigned_checkpoint_us": _mean_us(lambda: open_checkpoint(cosigned, log_key)),
        "cosign_us": _mean_us(lambda: witnesses[0].cosign(checkpoint, NOW)),
        f"verify_{WITNESSES}_cosignatures_us": _mean_us(
            lambda: verify_cosignatures(cosigned, witness_keys)
        ),
    }
    assert len(verify_cosignatures(cosigned, witness_keys)) == WITNESSES
    for name, value in figures.items():
        print(f"{name:>30}  {value:,.2f}")
    return figures


if __name__ == "__main__":
    main()
