"""Latency of a training round on Flower's Deployment Engine: plain Flower against Dure's path.

Real processes on loopback, as a consortium would run them: ``flower-superlink
--insecure --disable-runtime-dependency-installation``, N ``flower-supernode``
processes (each its own port), ``flwr run`` of a Flower App (``FLWR_HOME`` in a
temporary folder, telemetry and update check off), for N in 2, 4, 8:

- **plain**: Flower's default, as its examples write it
  (:mod:`benchmarks.deployment_plain`): a Message-API ClientApp that imports
  torch and trains the 1,000,000-parameter MLP in each ``flwr-clientapp``
  process, and ``FedAvg.start`` (``Grid.send_and_receive``: 3 s between pulls);
  Flower's SuperExec polls for tasks every 1 s (its default).
- **dure**: what ``dure factory up`` runs by default (``[supernode] runtime =
  "worker"``): each factory runs a warm worker (:mod:`dure.client.federation.worker`,
  torch and the store loaded once) that takes its SuperNode's tasks itself
  (``--isolation process``, :mod:`dure.client.federation.worker_executor`: no
  process per task), and the SuperNode runs paced
  (:mod:`dure.client.federation.supernode`: idle poll ``DURE_BENCH_IDLE_POLL``,
  reply poll ``DURE_BENCH_REPLY_POLL``, factory.toml's defaults).  The ServerApp
  is Dure's coordinator (:mod:`benchmarks.deployment_dure_server`: signed job,
  policy gate, claims, SQLite ledger, signed checkpoints; its exchange pulls
  every 50 ms, and asks for a reply's contents again after 20 ms).
- **dure-flower** (``runtime = "flower"``): paced as **dure**, but Flower's
  SuperExec starts a ``flwr-clientapp`` per task, running the light ClientApp
  (:mod:`dure.client.federation.light`, probed by
  :mod:`benchmarks.deployment_probe`) that forwards the task to the worker; the
  SuperExec polls for tasks every ``DURE_BENCH_SUPEREXEC_POLL`` seconds
  (``FLWR_SUPEREXEC_TASK_POLL_INTERVAL``, Flower's setting, default 1 s).
- **dure-unpaced**: as **dure**, with ``flower-supernode`` itself (Flower's
  fixed waits: 3 s idle, 0.5 s reply, 1 s before asking again for contents).

Both train the same size of model (about 1,000,000 float32 parameters), 10 local
Adam steps on 64 rows, every node every round, training rounds only.

Figures per path and N: the median round latency over the rounds after the
first, its distance from the SuperNode's polling floor (an idle SuperNode
sleeps its idle poll between pulls: 3 s in Flower, the idle poll when paced; and
between rounds every SuperNode is idle: its pull right after sending its reply
finds nothing, since the next round needs every reply), and the breakdown of the
round's critical path (the last node to answer): ``pickup`` (from push until
that node's ``flwr-clientapp`` process existed: SuperNode and SuperExec polling,
process spawn), ``start`` (interpreter and Flower's own imports and set-up,
until the app module is imported), ``import`` (the app module's imports),
``call`` (the ClientApp's work; for Dure the socket round trip, gate, training
and claim in the worker), ``train``, ``return`` (until the ServerApp has the
reply: the SuperNode's reply poll, upload, the ServerApp's pull), then
``aggregate`` and ``ledger`` (appends and checkpoint) on the coordinator.  Load
averages are recorded before and after each run: the machine is shared.

Environment: ``DURE_BENCH_DEPLOY_NODES`` (``2,4,8``), ``DURE_BENCH_DEPLOY_ROUNDS``
(5), ``DURE_BENCH_DEPLOY_PATHS`` (``dure,dure-flower,dure-unpaced,plain``),
``DURE_BENCH_SUPEREXEC_POLL`` (``0.1``), ``DURE_BENCH_IDLE_POLL`` (``0.5``),
``DURE_BENCH_REPLY_POLL`` (``0.05``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.deployment_cluster import (
    BIN,
    ROOT,
    cluster,
    flwr_run,
    wait_for,
    write_app,
)
from dure.cli.deployment_config import SuperNodeConfig
from dure.client.federation.trainer import LocalResult, LocalTask, train_policy

console = Console(highlight=False, width=160)
NODES = tuple(int(n) for n in os.environ.get("DURE_BENCH_DEPLOY_NODES", "2,4,8").split(","))
ROUNDS = int(os.environ.get("DURE_BENCH_DEPLOY_ROUNDS", "5"))
PATHS = tuple(
    os.environ.get("DURE_BENCH_DEPLOY_PATHS", "dure,dure-flower,dure-unpaced,plain").split(",")
)
SUPEREXEC_POLL = os.environ.get("DURE_BENCH_SUPEREXEC_POLL", "0.1")
_FACTORY = SuperNodeConfig.model_fields  # factory.toml's defaults
IDLE_POLL = os.environ.get("DURE_BENCH_IDLE_POLL", str(_FACTORY["idle_poll"].default))
REPLY_POLL = os.environ.get("DURE_BENCH_REPLY_POLL", str(_FACTORY["reply_poll"].default))
LOCAL_STEPS, ROWS = 10, 64
TRAINING = {
    "local_steps": LOCAL_STEPS,
    "lr": "0.001",
    "schedule": {"kind": "constant", "rounds": None, "floor": "0"},
}
"""Signed in the job's ``training``: the steps above at a constant 1e-3."""
FLOOR_S = 3.0


def timed_train_policy(task: LocalTask) -> LocalResult:
    """Dure's trainer, logging its wall time to ``$DURE_BENCH_TRAIN_LOG`` (the workers')."""
    started = time.time()
    result = train_policy(task)
    with open(os.environ["DURE_BENCH_TRAIN_LOG"], "a") as handle:
        handle.write(json.dumps({"start": started, "end": time.time()}) + "\n")
    return result


def _tasks(logs: Sequence[Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for path in logs if path.exists() for line in path.open()]


def run_plain(root: Path, nodes: int) -> dict[str, Any]:
    """Plain Flower's default (see the module docstring)."""
    logs = [root / f"tasks-{i}.jsonl" for i in range(nodes)]
    out = root / "server.json"
    config = {
        "bench-out": str(out), "bench-nodes": nodes, "bench-rounds": ROUNDS,
        "local-steps": LOCAL_STEPS, "batch": ROWS,
    }  # fmt: skip
    components = ("benchmarks.deployment_plain:server", "benchmarks.deployment_plain:client")
    load = os.getloadavg()
    with cluster(root, nodes, lambda i: {"bench-log": str(logs[i])}) as processes:
        server = flwr_run(processes, write_app(root, components, config), out, 3600)
    rounds = [
        {"round": r["round"], "start": r["push"], "push": r["push"], "replies": r["replies"],
         "end": r["end"], "aggregate_s": r["aggregate_s"], "ledger_s": 0.0,
         "train_s": r["train_s"], "valid": r["valid"]}
        for r in server["rounds"]
    ]  # fmt: skip
    return _summary("plain", nodes, rounds, _tasks(logs), [], load, FLOOR_S)


def run_dure_flower(root: Path, nodes: int) -> dict[str, Any]:
    """``runtime = "flower"``: a ``flwr-clientapp`` per task, the light app, paced."""
    return run_dure(root, nodes, executor=False)


def run_dure_unpaced(root: Path, nodes: int) -> dict[str, Any]:
    """The default runtime with Flower's own SuperNode waits."""
    return run_dure(root, nodes, paced=False)


def run_dure(
    root: Path, nodes: int, *, executor: bool = True, paced: bool = True
) -> dict[str, Any]:
    """Dure's paths: warm workers, Dure's coordinator (module docstring)."""
    from tests.builders.federation import (
        build_consortium,
        node_config,
        plain_policy,
        with_min_contributors,
    )

    from dure.policies.keys import SigningKey

    names = [f"factory-{chr(ord('a') + i)}" for i in range(nodes)]
    consortium = build_consortium(
        root / "sites",
        names,
        policy=lambda name: with_min_contributors(plain_policy(name), 2),
        episodes=4,
        frames=ROWS // 4,
    )
    registry = root / "registry"
    for sub in ("identities", "policies"):
        (registry / sub).mkdir(parents=True)
    for site in consortium.sites.values():
        (registry / "identities" / f"{site.name}.json").write_bytes(site.identity.to_json())
        (registry / "policies" / f"{site.name}.json").write_bytes(site.policy.to_json())
    consortium.operator.public.save(root / "operator.pub")
    ledger_key = SigningKey.generate()
    ledger_key.save(root / "ledger.pem")
    aggregation = {"strategy": "fedavg", "secure": False, "norm_bound": "1000.0", "params": {}}
    job = consortium.job(
        rounds=ROUNDS, min_contributors=2, aggregation=aggregation, training=TRAINING
    )
    (root / "job.json").write_bytes(job.to_json())
    np.savez(root / "initial.npz", unused=np.zeros(1, np.float32))
    sites = list(consortium.sites.values())
    configs = [node_config(consortium, site) for site in sites]
    # the sites pin the ledger key this run's coordinator signs with
    for config in configs:
        config["dure-ledger-key"] = _ledger_verifier(ledger_key)
    train_log, out = root / "train.jsonl", root / "server.json"
    sockets = [root / "run" / f"{site.name}.sock" for site in sites]
    logs = [root / f"tasks-{i}.jsonl" for i in range(nodes)]
    run_config = {
        "dure-job": str(root / "job.json"), "dure-operator-keys": str(root / "operator.pub"),
        "dure-registry": str(registry), "dure-ledger": f"sqlite:///{root / 'ledger.db'}",
        "dure-ledger-key": str(root / "ledger.pem"), "dure-ledger-name": "dure.bench/ledger",
        "dure-models": str(root / "models"), "dure-initial-model": str(root / "initial.npz"),
        "dure-consortium": "urn:dure:consortium:robotics-coop",
        "bench-out": str(out),
        "dure-round-timeout": "120",
    }  # fmt: skip

    def node(index: int) -> dict[str, str]:
        return {
            "dure-worker": str(sockets[index]),
            "dure-site": sites[index].name,
            "bench-log": str(logs[index]),
        }

    # The executor runs the factory's installed ClientApp and refuses any other name
    # (worker_executor.FOREIGN_APP); the probe wraps the light app for the timings.
    client = (
        "dure.client.federation.light:app"
        if executor
        else "benchmarks.deployment_probe:dure_client"
    )
    components = ("benchmarks.deployment_dure_server:server", client)
    load = os.getloadavg()
    options = ("--isolation", "process") if executor else ()
    poll = {"FLWR_SUPEREXEC_TASK_POLL_INTERVAL": SUPEREXEC_POLL}
    program: tuple[str, ...] = (str(BIN / "flower-supernode"),)
    if paced:
        program = (sys.executable, "-m", "dure.client.federation.supernode")
        program += ("--idle-poll", IDLE_POLL, "--reply-poll", REPLY_POLL)
    with cluster(root, nodes, node, *options, supernode=program, **poll) as procs:
        started = time.time()
        for index, (site, config, path) in enumerate(zip(sites, configs, sockets, strict=True)):
            argv = [sys.executable, "-m", "dure.client.federation.worker", "--address", str(path)]
            if executor:
                argv += ["--runtime-api", f"127.0.0.1:{procs.ports[index]}"]
            argv += ["--node-config", " ".join(f"{k}={json.dumps(v)}" for k, v in config.items())]
            argv += ["--trainer", "benchmarks.deployment_bench:timed_train_policy"]
            procs.start(f"worker-{site.name}", argv, DURE_BENCH_TRAIN_LOG=str(train_log))
        for path in sockets:
            wait_for(path.exists, f"the worker at {path}")
        warm = time.time() - started
        server = flwr_run(procs, write_app(root, components, run_config), out, 1800)
    trains = _tasks([train_log])
    name = "dure" if executor and paced else "dure-flower" if paced else "dure-unpaced"
    floor = float(IDLE_POLL) if paced else FLOOR_S
    summary = _summary(name, nodes, server["rounds"], _tasks(logs), trains, load, floor)
    summary |= {"workers_ready_s": round(warm, 2), "setup_s": round(server["setup_s"], 2)}
    summary["parameters"] = server["parameters"]
    summary["committed"] = sum(r["status"] == "committed" for r in server["rounds"])
    return summary


def _ledger_verifier(key: Any) -> str:
    from dure.server.ledger.memory import MemoryLedgerStore
    from dure.server.ledger.service import Ledger

    return Ledger(MemoryLedgerStore(), key, "dure.bench/ledger").public_key()


def _summary(
    path: str,
    nodes: int,
    rounds: list[dict[str, Any]],
    tasks: list[dict[str, Any]],
    trains: list[dict[str, Any]],
    load: tuple[float, float, float],
    floor: float,
) -> dict[str, Any]:
    later = rounds[1:] or rounds
    latency = statistics.median(r["end"] - r["start"] for r in later)
    parts = [_critical_path(r, tasks, trains) for r in later]
    breakdown = {k: round(statistics.median(p[k] for p in parts), 3) for k in parts[0]}
    return {
        "path": path,
        "nodes": nodes,
        "round_s": round(latency, 3),
        "rounds_s": [round(r["end"] - r["start"], 3) for r in rounds],
        "answered": [r.get("contributors", r.get("valid")) for r in rounds],
        "floor_s": floor,
        "above_floor_s": round(latency - floor, 3),
        "breakdown_s": breakdown,
        "load_before": [round(x, 2) for x in load],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def _critical_path(
    round: dict[str, Any], tasks: list[dict[str, Any]], trains: list[dict[str, Any]]
) -> dict[str, float]:
    """The steps of the last node to answer in ``round`` (see the module docstring)."""
    mine = [
        t for t in tasks if t["type"] == "train" and round["push"] <= t["call"] <= round["replies"]
    ]
    if not mine:  # no task process (the executor): before training, training, after
        done = max(
            (t for t in trains if round["push"] <= t["start"] <= round["replies"]),
            key=lambda t: t["end"],
        )
        return {
            "pickup": done["start"] - round["push"],
            "start": 0.0,
            "import": 0.0,
            "call": done["end"] - done["start"],
            "train": done["end"] - done["start"],
            "return": round["replies"] - done["end"],
            "aggregate": round.get("aggregate_s", 0.0),
            "ledger": round.get("ledger_s", 0.0) + round.get("checkpoint_s", 0.0),
        }
    last = max(mine, key=lambda t: t["end"])
    inside = [t for t in trains if last["call"] <= t["start"] <= last["end"]]
    train = inside[0]["end"] - inside[0]["start"] if inside else round.get("train_s", 0.0)
    return {
        "pickup": last["process"] - round["push"],
        "start": last["module"] - last["process"],
        "import": last["imported"] - last["module"],
        "call": last["end"] - last["call"],
        "train": train,
        "return": round["replies"] - last["end"],
        "aggregate": round.get("aggregate_s", 0.0),
        "ledger": round.get("ledger_s", 0.0) + round.get("checkpoint_s", 0.0),
    }


def _table(results: list[dict[str, Any]]) -> Table:
    table = Table(
        title=f"Training round on the Deployment Engine, loopback: {ROUNDS} rounds, median of "
        f"rounds 2+ (1M parameters, {LOCAL_STEPS} local steps); floor: the SuperNode's idle poll"
    )
    columns = ["path", "N", "round", "floor", "above floor", "pickup", "start", "import", "call"]
    columns += ["train", "return", "aggr.", "ledger", "load"]
    for column in columns:
        table.add_column(column, justify="left" if column == "path" else "right")
    for r in results:
        b = r["breakdown_s"]
        table.add_row(
            r["path"], str(r["nodes"]), f"{r['round_s']:.2f} s", f"{r['floor_s']:g} s",
            f"{r['above_floor_s']:+.2f} s",
            *(f"{b[k]:.2f}" for k in ("pickup", "start", "import", "call", "train", "return")),
            f"{b['aggregate'] * 1e3:.0f} ms", f"{b['ledger'] * 1e3:.0f} ms",
            "/".join(f"{x:.1f}" for x in r["load_before"]),
        )  # fmt: skip
    return table


_IMPORTS = {
    "flower": "import flwr.supernode.cli.flwr_clientapp, flwr.clientapp.utils",
    "dure_light": "import flwr.supernode.cli.flwr_clientapp, flwr.clientapp.utils; "
    "import benchmarks.deployment_probe",
    "plain_torch": "import flwr.supernode.cli.flwr_clientapp, flwr.clientapp.utils; "
    "import benchmarks.deployment_plain",
}


def process_cost(repeats: int = 5) -> dict[str, float]:
    """Wall and CPU seconds of a fresh interpreter importing what a task process imports.

    ``flower``: Flower's own ``flwr-clientapp`` modules (paid by every task,
    whatever the app); ``dure_light``: plus the probed light ClientApp;
    ``plain_torch``: plus the plain app (torch).  Medians of ``repeats``.
    """
    import resource

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    figures: dict[str, float] = {}
    for name, code in _IMPORTS.items():
        walls, cpus = [], []
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)
            walls.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        figures[f"process_{name}_wall_s"] = round(statistics.median(walls), 3)
        figures[f"process_{name}_cpu_s"] = round(statistics.median(cpus), 3)
    return figures


def main() -> dict[str, Any]:
    """Run every path for every N (interleaved), print and return the figures."""
    results: list[dict[str, Any]] = []
    runners = {
        "dure": run_dure, "dure-flower": run_dure_flower, "dure-unpaced": run_dure_unpaced,
        "plain": run_plain,
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="dure-deploy-bench-") as tmp:
        for nodes in NODES:
            for path in PATHS:
                console.print(f"{path}, {nodes} SuperNodes …")
                try:
                    result = runners[path](Path(tmp) / f"{path}-{nodes}", nodes)
                except RuntimeError as exc:  # keep the other runs' figures
                    console.print(f"[red]{path}, {nodes}: {exc}[/]")
                    continue
                console.print(json.dumps(result))
                results.append(result)
    console.print(_table(results))
    figures: dict[str, Any] = {"runs": results, "rounds": ROUNDS, "local_steps": LOCAL_STEPS}
    figures["load_before_process_cost"] = [round(x, 2) for x in os.getloadavg()]
    figures |= process_cost()
    console.print(json.dumps({k: v for k, v in figures.items() if k.startswith("process_")}))
    for r in results:
        figures[f"{r['path']}_{r['nodes']}_round_s"] = r["round_s"]
    return figures


if __name__ == "__main__":
    main()
