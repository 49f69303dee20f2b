"""``dure demo``: five simulated factories train one robot policy under signed policies.

Each factory simulates Meta-World demonstrations of its own two tasks, logs them
in its own native style and ingests them through the data plane; each signs a
usage policy (one forbids the job's purpose, one requires three contributors);
the consortium operator signs a job; Flower's Simulation Engine runs the
federated rounds with admission before sampling, the factories' policy gates,
validation, aggregation and the audit ledger; the result is evaluated in
Meta-World against a pooled model and each factory's local-only model, and the
ledger is exported and verified independently.
"""

from dure.cli.demo.command import register

__all__ = ["register"]
