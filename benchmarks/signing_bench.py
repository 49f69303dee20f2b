"""Signing and verifying a usage-policy envelope (DSSE, Ed25519).

Figures (µs per operation, median of repeated batches, one core):
- ``sign_envelope_us``: canonical bytes → DSSE envelope (PAE + Ed25519 signature);
- ``verify_envelope_us``: received envelope JSON → parsed envelope → signature verified
  over the payload bytes (what must happen before anything parses the policy);
- ``open_policy_us``: verify and then parse and validate the policy document;
- ``ed25519_sign_us`` / ``ed25519_verify_us``: the bare primitive, for scale.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from dure.policies.dsse import Envelope, sign_envelope, verify_envelope
from dure.policies.examples import example_policy
from dure.policies.keys import SigningKey, VerifyKey
from dure.policies.policy import UsagePolicy
from dure.policies.signed import open_document

KIND = "application/vnd.dure.policy+json"


def _median_us(fn: Callable[[], object], repeat: int = 7, number: int = 300) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - started) / number * 1e6)
    return round(statistics.median(samples), 1)


def main() -> dict[str, float]:
    key = SigningKey.generate()
    trusted: dict[str, VerifyKey] = {key.key_id: key.public}
    payload = example_policy().to_canonical_bytes()
    envelope = sign_envelope(KIND, payload, key)
    wire = envelope.to_json()
    figures = {
        "policy_bytes": float(len(payload)),
        "sign_envelope_us": _median_us(lambda: sign_envelope(KIND, payload, key)),
        "verify_envelope_us": _median_us(
            lambda: verify_envelope(Envelope.from_json(wire), trusted, KIND)
        ),
        "open_policy_us": _median_us(
            lambda: open_document(Envelope.from_json(wire), "policy", UsagePolicy, trusted),
            number=100,
        ),
        "ed25519_sign_us": _median_us(lambda: key.sign(payload)),
    }
    signature = key.sign(payload)
    figures["ed25519_verify_us"] = _median_us(lambda: key.public.verify(signature, payload))
    for name, value in figures.items():
        print(f"{name:>22}  {value:>10.1f}")
    return figures


if __name__ == "__main__":
    main()
