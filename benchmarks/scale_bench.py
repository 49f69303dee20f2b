"""Many virtual factories on Flower's Simulation Engine: time per round, memory, ledger size.

For each consortium size N (``DURE_BENCH_SCALE_SITES``, default ``10,30,100``)
a fresh Python process builds N factories, each with its own Ed25519 key,
signed site identity (with an ECDSA SuperNode key), signed usage policy and
episode store holding ``DURE_BENCH_SCALE_EPISODES`` (4) canonical episodes of
``DURE_BENCH_SCALE_FRAMES`` (40) frames written through the real store; the
coordinator registers every site and policy in a ledger on SQL (a SQLite file,
or, with ``DURE_BENCH_SCALE_POSTGRES=postgresql://postgres@127.0.0.1:5432/test``,
a fresh schema there, dropped afterwards), an operator signs a job, and Dure's
real coordinator and ClientApp run ``DURE_BENCH_SCALE_ROUNDS`` (4) rounds through
``flwr.simulation.run_simulation`` with one CPU per virtual client (two Ray
workers on two cores).  Every admitted factory is sampled every round and
trains the demo's policy (39-256-256-4 MLP, about 77k parameters) for
``DURE_BENCH_SCALE_STEPS`` (10) local steps.

Figures per N: Ray's and Flower's start-up (``run_simulation`` called until
the first ClientApp call starts), the run's set-up after it (admission, node
binding, statistics), each round's wall time, split into the time spent waiting
for the factories (``exchange``) and the coordinator's own work (the rest:
re-admission, judging, ledger, aggregation, checkpoint), the ClientApp's CPU
time per ``train`` call, the CPU seconds a round costs in the driver (coordinator,
Flower's SuperLink and dispatch), Ray's workers (ClientApps) and Ray itself, which
a busy machine disturbs less than wall time, the peak memory of the whole process tree (every Ray
process included; RSS summed, which counts shared libraries once per process,
and PSS summed, which does not), sampled by the parent process every 0.5 s from
/proc, and the ledger's entries, leaf bytes and database bytes after
registration and after each round.  Target at N = 100: under 60 s per
round and under 8 GB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.scale_sim import descendants

console = Console(highlight=False, width=160)
SIZES = [int(n) for n in os.environ.get("DURE_BENCH_SCALE_SITES", "10,30,100").split(",")]
SAMPLE_EVERY = 0.5


def main() -> dict[str, Any]:
    """Run every size in its own process, sample its memory, print and return the figures."""
    figures: dict[str, Any] = {"load_average_before": list(os.getloadavg()), "sizes": {}}
    for n in SIZES:
        figures["sizes"][str(n)] = _measure(n)
        console.print(_table(figures["sizes"]))
    figures["load_average_after"] = list(os.getloadavg())
    before, after = figures["load_average_before"], figures["load_average_after"]
    console.print(f"load average before {before}, after {after}")
    return figures


def _measure(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"dure-scale-{n}-") as tmp:
        out = Path(tmp) / "figures.json"
        command = [sys.executable, "-m", "benchmarks.scale_sim", str(n), tmp, str(out)]
        child = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        samples = _sample(child.pid, lambda: child.poll() is not None)
        if child.wait() != 0:
            raise SystemExit(f"the run with {n} factories failed (exit {child.returncode})")
        figures: dict[str, Any] = json.loads(out.read_text())
    marks = figures.pop("marks")
    figures["memory"] = {
        "peak_rss_gb": _peak(samples, "rss"),
        "peak_pss_gb": _peak(samples, "pss"),
        "peak_rss_rounds_gb": _peak(samples, "rss", marks["rounds_start"], marks["rounds_end"]),
        "peak_pss_rounds_gb": _peak(samples, "pss", marks["rounds_start"], marks["rounds_end"]),
        "peak_processes": max((s["processes"] for s in samples), default=0),
        "samples": len(samples),
    }
    return figures


def _sample(pid: int, done: Callable[[], bool]) -> list[dict[str, float]]:
    """Memory of ``pid`` and all its descendants, every ``SAMPLE_EVERY`` s until ``done``."""
    samples: list[dict[str, float]] = []

    def loop() -> None:
        while not done():
            started = time.time()
            tree = descendants(pid)
            usage = [_memory(p) for p in tree]
            rss = sum(u[0] for u in usage)
            pss = sum(u[1] for u in usage)
            samples.append({"t": started, "rss": rss, "pss": pss, "processes": len(tree)})
            time.sleep(max(0.0, SAMPLE_EVERY - (time.time() - started)))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    thread.join()
    return samples


def _memory(pid: int) -> tuple[int, int]:
    """RSS and PSS of ``pid`` in bytes (0, 0 if it is gone)."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0, 0
    fields = {line.split(":")[0]: line.split()[1:2] for line in rollup[1:]}
    rss, pss = fields.get("Rss", ["0"]), fields.get("Pss", ["0"])
    return int(rss[0]) * 1024, int(pss[0]) * 1024


def _peak(
    samples: list[dict[str, float]], key: str, start: float = 0.0, end: float = float("inf")
) -> float:
    inside = [s[key] for s in samples if start <= s["t"] <= end]
    return round(max(inside, default=0.0) / 2**30, 3)


def _table(sizes: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="Dure on Flower's Simulation Engine, 1 CPU per virtual client")
    columns = (
        "factories",
        "Ray start",
        "set-up",
        "round (median)",
        "waiting",
        "train CPU/call",
        "CPU/round",
        "peak RSS",
        "peak PSS",
        "ledger entries",
        "ledger bytes",
        "+entries/round",
        "+bytes/round",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for n, f in sizes.items():
        table.add_row(
            n,
            f"{f['ray_start_s']:.1f} s",
            f"{f['setup_s']:.1f} s",
            f"{f['round_median_s']:.2f} s",
            f"{f['exchange_median_s']:.2f} s",
            f"{f['client_train_cpu_ms']:.0f} ms",
            f"{sum(f['round_cpu_s'].values()):.1f} s",
            f"{f['memory']['peak_rss_gb']:.2f} GB",
            f"{f['memory']['peak_pss_gb']:.2f} GB",
            str(f["ledger"]["entries_end"]),
            f"{f['ledger']['db_bytes_end'] / 2**20:.2f} MiB",
            f"{f['ledger']['entries_per_round']:.0f}",
            f"{f['ledger']['db_bytes_per_round'] / 2**10:.0f} KiB",
        )
    return table


if __name__ == "__main__":
    main()
