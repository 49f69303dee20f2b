"""Policy evaluation latency: the example site policy against the example job.

Figures (median of several repeats, microseconds unless the name says ms):
evaluation at admission, in a round, and of a denied job; parsing signed bytes of
a policy and a job; computing a policy id; admitting one job against 100 sites.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from dure.policies.evaluation import evaluate
from dure.policies.examples import (
    EXAMPLE_NOW,
    example_context,
    example_job,
    example_policy,
)
from dure.policies.job import JobManifest
from dure.policies.policy import UsagePolicy

REPEATS = 7


def _median_us(action: Callable[[], object], number: int) -> float:
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter_ns()
        for _ in range(number):
            action()
        samples.append((time.perf_counter_ns() - started) / number / 1000)
    return round(statistics.median(samples), 2)


def main() -> dict[str, float]:
    policy, job = example_policy(), example_job()
    admission = example_context()
    in_round = example_context(round=7, contributors=3, epsilon_spent="2.5")
    late = example_context(now=EXAMPLE_NOW + timedelta(days=400), revoked=True)
    policy_bytes, job_bytes = policy.to_canonical_bytes(), job.to_canonical_bytes()
    sites = [example_policy(f"factory-{i:03d}") for i in range(100)]
    assert evaluate(policy, job, admission).allowed and not evaluate(policy, job, late).allowed

    figures = {
        "evaluate_admission_us": _median_us(lambda: evaluate(policy, job, admission), 2000),
        "evaluate_round_us": _median_us(lambda: evaluate(policy, job, in_round), 2000),
        "evaluate_denied_us": _median_us(lambda: evaluate(policy, job, late), 2000),
        "parse_policy_us": _median_us(lambda: UsagePolicy.from_canonical_bytes(policy_bytes), 300),
        "parse_job_us": _median_us(lambda: JobManifest.from_canonical_bytes(job_bytes), 300),
        "policy_id_us": _median_us(policy.document_id, 300),
        "admit_100_sites_ms": round(
            _median_us(lambda: [evaluate(p, job, admission) for p in sites], 5) / 1000, 3
        ),
    }
    for name, value in figures.items():
        print(f"{name:>24}  {value:>10.2f}")
    return figures


if __name__ == "__main__":
    main()
