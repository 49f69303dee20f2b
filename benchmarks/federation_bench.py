"""Dure's overhead per federated round against the same Flower run without Dure.

Same sites, same episodes, same model, same local training, same Flower Message
API, measured side by side in one process, rounds interleaved (a Dure round,
then a plain round) so both see the same machine:

- **Dure**: the coordinator's round (re-admission, ledger entries, claim
  verification, validation, aggregation through Flower's FedAvg, model
  registry, a signed checkpoint, receipts) and the factory's ClientApp
  (receipts verified and kept, policy gate: job signature and policy
  evaluation, episode selection and its Merkle root, training, signed claim).
- **plain Flower**: the same push/pull of ``train`` Messages to the same nodes,
  a ClientApp that trains on the same episodes and replies with arrays and
  metrics, and Flower's ``FedAvg.aggregate_train`` on the replies.

Figures: the median wall and CPU time of a round on each path, and, measured
on the in-process path, the CPU time of Dure's own steps alone (``dure_work_*``:
gate, receipts, selection, claim, re-admission, judging, ledger, checkpoint,
model registry), which machine noise disturbs least; on a busy shared machine the
side-by-side medians move by several percent from run to run.

Engines: Flower Messages through an in-process Grid (every message deflated and
inflated with Flower's own encoding, ClientApps called as Flower calls them),
and, when Ray is installed (``flwr[simulation]``), Flower's Simulation Engine
(``run_simulation``), each Dure and plain run timing its rounds in its ServerApp
(Ray's start-up excluded).  Set ``DURE_BENCH_SIMULATION=0`` to skip the latter.

Sizes (environment), the demo's by default: ``DURE_BENCH_FED_SITES`` (5),
``DURE_BENCH_FED_ROUNDS`` (10), ``DURE_BENCH_FED_EPISODES`` per site (50: 25 demos
of 2 tasks) of ``DURE_BENCH_FED_FRAMES`` frames (150); the model is the learning
policy (hidden 256, 256) trained for 50 local steps of 256 frames, as in the
demo.  Target: overhead at most 5% per round.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy.typing as npt
from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from rich.console import Console
from rich.table import Table
from tests.builders.federation import Consortium, build_consortium, fixed_now, node_config
from tests.builders.flower import LocalGrid, LocalNode

from benchmarks.federation_plain import plain_client_app, plain_config, plain_round, plain_train
from dure.client.federation.clientapp import create_client_app, settings_by_partition
from dure.client.federation.trainer import train_policy
from dure.client.training.model import build_policy_model
from dure.server.federation.coordinator import Coordinator
from dure.server.federation.statistics import ConsortiumStats

console = Console(highlight=False)
Arrays = dict[str, npt.NDArray[Any]]
SITES = int(os.environ.get("DURE_BENCH_FED_SITES", "5"))
ROUNDS = int(os.environ.get("DURE_BENCH_FED_ROUNDS", "10"))
EPISODES = int(os.environ.get("DURE_BENCH_FED_EPISODES", "50"))
FRAMES = int(os.environ.get("DURE_BENCH_FED_FRAMES", "150"))
LOCAL_STEPS = 50
TRAINING = {
    "local_steps": LOCAL_STEPS,
    "lr": "0.001",
    "schedule": {"kind": "constant", "rounds": None, "floor": "0"},
}
"""Signed in the job's ``training``: the steps above at a constant 1e-3."""


def _initial(stats: ConsortiumStats) -> Arrays:
    model = build_policy_model(stats.observation_dim, len(stats.tasks), stats.action_dim)
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _consortium(root: Path) -> Consortium:
    names = [f"factory-{chr(ord('a') + i)}" for i in range(SITES)]
    return build_consortium(root, names, episodes=EPISODES, frames=FRAMES)


def _coordinator(consortium: Consortium, **options: Any) -> Coordinator:
    return consortium.coordinator(initial_model=_initial, round_timeout=600.0, **options)


def in_process(root: Path) -> dict[str, float]:
    """Dure and plain rounds, interleaved, through Flower Messages on an in-process Grid.

    Everything runs in this process, so besides wall time the figures include
    CPU time (``time.process_time``), which other processes on a shared
    machine disturb far less.
    """
    consortium = _consortium(root / "in-process")
    dure_grid = consortium.grid(train_policy)
    plain_grid = LocalGrid(
        LocalNode(201 + i, plain_client_app(site.home), {})
        for i, site in enumerate(consortium.sites.values())
    )
    coordinator = _coordinator(consortium, poll=0.01)
    started = time.perf_counter()
    state = coordinator.start(dure_grid, consortium.job(rounds=ROUNDS, training=TRAINING))
    setup = time.perf_counter() - started
    config, model = plain_config(state, coordinator), dict(state.model)
    gc.collect()
    gc.freeze()  # long-lived objects (torch, Flower, the stores) out of every later pass
    dure: list[tuple[float, float]] = []
    plain: list[tuple[float, float]] = []

    def dure_round(r: int) -> None:
        dure.append(_timed(lambda: coordinator.play(dure_grid, state, r)))

    def plain_round_(r: int) -> None:
        plain.append(_timed(lambda: model.update(plain_round(plain_grid, model, config, r))))

    with _DureMeter() as meter:
        for number in range(1, ROUNDS + 1):  # alternate which goes first, to cancel drift
            first, second = (dure_round, plain_round_) if number % 2 else (plain_round_, dure_round)
            first(number)
            second(number)
    finished = time.perf_counter()
    coordinator.finish(dure_grid, state)
    gc.unfreeze()
    figures = _figures("in_process", [w for w, _ in dure], [w for w, _ in plain], setup, None)
    figures |= _figures("in_process_cpu", [c for _, c in dure], [c for _, c in plain], None, None)
    figures["in_process_run_finish_s"] = round(time.perf_counter() - finished, 4)
    work = meter.total / ROUNDS
    plain_cpu = statistics.median(c for _, c in plain)
    figures["dure_work_cpu_ms_per_round"] = round(work * 1e3, 2)
    figures["dure_work_cpu_ms_per_site_round"] = round(work * 1e3 / SITES, 2)
    figures["dure_work_pct_of_plain_round"] = round(100 * work / plain_cpu, 2)
    for name, spent in sorted(meter.spent.items()):
        figures[f"dure_work_ms_per_round.{name}"] = round(spent * 1e3 / ROUNDS, 3)
    return figures


class _DureMeter:
    """CPU time spent in Dure's own steps of a round (neither training nor transport).

    Wraps, for the duration of a ``with`` block, the functions that exist only
    because of Dure: on the factory the policy gate, the receipts, the episode
    selector and selection root, the signed claim; on the coordinator the
    re-admission, the judging of replies (reply decoding, validation, claim
    verification), the ledger appends, the checkpoints and the receipts issued,
    the model registry.  Nested calls are counted once (the outermost).
    """

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self._depth = 0
        self._saved: list[tuple[object, str, object]] = []

    @property
    def total(self) -> float:
        """CPU seconds in every metered step."""
        return sum(self.spent.values())

    def __enter__(self) -> _DureMeter:
        import dure.client.federation.contribute as contribute
        import dure.client.federation.gate as gate
        import dure.client.federation.receipts as receipts
        import dure.client.federation.selection as selection
        import dure.server.federation.outbox as outbox
        import dure.server.federation.rounds as rounds
        from dure.server.federation.models import MemoryModelStore
        from dure.server.ledger.service import Ledger

        targets: list[tuple[object, str]] = [
            (gate, "authorise"),
            (receipts.ReceiptBox, "accept"),
            (selection, "_matching"),
            (selection, "selection_root"),
            (contribute, "_claim"),
            (rounds, "_readmit"),
            (rounds, "_judge"),
            (rounds, "append"),
            (Ledger, "checkpoint"),
            (outbox.ReceiptOutbox, "drain"),
            (MemoryModelStore, "put"),
        ]
        for owner, name in targets:
            self._wrap(owner, name)
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)

    def _wrap(self, owner: object, name: str) -> None:
        original = getattr(owner, name)
        label = f"{getattr(owner, '__name__', type(owner).__name__).rsplit('.', 1)[-1]}.{name}"

        def metered(*args: object, **kwargs: object) -> object:
            self._depth += 1
            started = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    spent = time.process_time() - started
                    self.spent[label] = self.spent.get(label, 0.0) + spent

        self._saved.append((owner, name, original))
        setattr(owner, name, metered)


def simulation(root: Path) -> dict[str, float]:
    """The same comparison through Flower's Simulation Engine (Ray), interleaved in one run.

    Each virtual SuperNode runs one ClientApp with both handlers: Dure's
    (``train``) and the plain one (``train.plain``); the ServerApp alternates a
    Dure round and a plain round on the same nodes.  Besides each round's wall
    time, the figures give CPU time, which a busy machine disturbs less: the
    ServerApp thread's per round (``time.thread_time``) and each ClientApp
    call's (measured by a mod in the Ray worker, written to a log file).
    """
    from flwr.simulation import run_simulation

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    consortium = _consortium(root / "simulation")
    configs = [node_config(consortium, site) for site in consortium.sites.values()]
    homes = tuple(site.home for site in consortium.sites.values())
    coordinator = _coordinator(consortium, poll=0.01, connect_wait=120.0)
    log = root / "client-cpu.jsonl"
    wall: dict[str, list[float]] = {"dure": [], "plain": []}
    server_cpu: dict[str, list[float]] = {"dure": [], "plain": []}

    def main(grid: Grid, context: Context) -> None:
        state = coordinator.start(grid, consortium.job(rounds=ROUNDS, training=TRAINING))
        config, model = plain_config(state, coordinator), dict(state.model)
        for number in range(1, ROUNDS + 1):
            runs = [
                ("dure", lambda n=number: coordinator.play(grid, state, n)),
                (
                    "plain",
                    lambda n=number: model.update(plain_round(grid, model, config, n, PLAIN)),
                ),
            ]
            for name, work in runs if number % 2 else reversed(runs):
                started = time.thread_time()
                wall[name].append(_timed(work)[0])
                server_cpu[name].append(time.thread_time() - started)
        coordinator.finish(grid, state)

    dure_app = create_client_app(settings_by_partition(configs), train_policy, fixed_now)
    app = ClientApp(mods=[_cpu_probe(log)])
    for message_type in ("identify", "stats", "receipts"):
        app.query(message_type)(dure_app)
    app.train()(dure_app)
    app.train("plain")(_plain_by_partition(homes))
    _simulate(run_simulation, _server(main), app)
    client = _client_cpu(log)
    figures = _figures("simulation", wall["dure"], wall["plain"], None, None)
    cpu_dure = statistics.median(server_cpu["dure"]) + SITES * client["train"]
    cpu_plain = statistics.median(server_cpu["plain"]) + SITES * client[PLAIN]
    figures |= {
        "simulation_server_cpu_dure_ms": round(statistics.median(server_cpu["dure"]) * 1e3, 2),
        "simulation_server_cpu_plain_ms": round(statistics.median(server_cpu["plain"]) * 1e3, 2),
        "simulation_client_cpu_dure_ms": round(client["train"] * 1e3, 2),
        "simulation_client_cpu_plain_ms": round(client[PLAIN] * 1e3, 2),
        "simulation_cpu_round_dure_s": round(cpu_dure, 4),
        "simulation_cpu_round_plain_s": round(cpu_plain, 4),
        "simulation_cpu_overhead_ms_per_round": round((cpu_dure - cpu_plain) * 1e3, 2),
        "simulation_cpu_overhead_pct": round(100 * (cpu_dure - cpu_plain) / cpu_plain, 2),
    }
    return figures


PLAIN = "train.plain"


def _cpu_probe(log: Path) -> Callable[[Message, Context, Callable[..., Message]], Message]:
    """A ClientApp mod that appends each call's message type and thread CPU time to ``log``."""

    def probe(message: Message, context: Context, call_next: Callable[..., Message]) -> Message:
        started = time.thread_time()
        reply = call_next(message, context)
        spent = time.thread_time() - started
        with log.open("a") as handle:
            handle.write(json.dumps([message.metadata.message_type, spent]) + "\n")
        return reply

    return probe


def _client_cpu(log: Path) -> dict[str, float]:
    """Median CPU seconds per ClientApp call, by message type (the first round left out)."""
    calls: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        kind, spent = json.loads(line)
        calls.setdefault(kind, []).append(spent)
    return {kind: statistics.median(times[SITES:] or times) for kind, times in calls.items()}


def _plain_by_partition(homes: tuple[Path, ...]) -> Callable[[Message, Context], Message]:
    def train(message: Message, context: Context) -> Message:
        return plain_train(homes[int(context.node_config["partition-id"])], message)

    return train


def _server(main: Callable[[Grid, Context], None]) -> ServerApp:
    app = ServerApp()
    app.main()(main)
    return app


def _simulate(run: Callable[..., None], server: ServerApp, client: ClientApp) -> None:
    run(
        server_app=server,
        client_app=client,
        num_supernodes=SITES,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
    )


def _timed(work: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of ``work``, with Python's cyclic GC paused.

    Coordinator, factories and baseline share this process, so a full GC pass
    (hundreds of milliseconds over torch's and Flower's objects) lands on
    whichever round happens to trigger it; the garbage is collected between
    rounds instead, outside the timing, for both paths alike.
    """
    gc.collect()
    gc.disable()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        gc.enable()


def _figures(
    engine: str, dure: list[float], plain: list[float], setup: float | None, finish: float | None
) -> dict[str, float]:
    d, p = statistics.median(dure), statistics.median(plain)
    figures = {
        f"{engine}_round_dure_s": round(d, 4),
        f"{engine}_round_plain_s": round(p, 4),
        f"{engine}_overhead_ms_per_round": round((d - p) * 1000, 2),
        f"{engine}_overhead_pct": round(100 * (d - p) / p, 2),
    }
    if setup is not None:
        figures[f"{engine}_run_setup_s"] = round(setup, 4)
    if finish is not None:
        figures[f"{engine}_run_finish_s"] = round(finish, 4)
    return figures


def _table(figures: dict[str, float]) -> Table:
    table = Table(
        title=f"Dure vs plain Flower: {SITES} sites, {ROUNDS} rounds (median per round; "
        "*-cpu: CPU seconds, coordinator + every factory)"
    )
    for column in ("engine", "Dure round", "plain round", "overhead", "overhead %", "target"):
        table.add_column(column, justify="right" if column != "engine" else "left")
    for engine in ("in_process", "in_process_cpu", "simulation", "simulation_cpu"):
        if f"{engine}_overhead_pct" not in figures:
            continue
        pct = figures[f"{engine}_overhead_pct"]
        table.add_row(
            engine.replace("_", "-"),
            f"{figures[f'{engine}_round_dure_s']:.3f} s",
            f"{figures[f'{engine}_round_plain_s']:.3f} s",
            f"{figures[f'{engine}_overhead_ms_per_round']:.1f} ms",
            f"{pct:.2f}%",
            "[green]<= 5%[/]" if pct <= 5 else "[red]> 5%[/]",
        )
    return table


def main() -> dict[str, float]:
    """Run the comparison and print the figures."""
    logging.getLogger("flwr").setLevel(logging.WARNING)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="dure-fed-bench-") as tmp:
        figures |= in_process(Path(tmp))
        wanted = os.environ.get("DURE_BENCH_SIMULATION", "1") != "0"
        if wanted and importlib.util.find_spec("ray") is not None:
            figures |= simulation(Path(tmp))
    console.print(_table(figures))
    if "dure_work_cpu_ms_per_round" in figures:
        console.print(
            f"Dure's own steps (gate, receipts, selection, claim, re-admission, judging, "
            f"ledger, checkpoint, registry): {figures['dure_work_cpu_ms_per_round']:.1f} ms CPU "
            f"per round, {figures['dure_work_cpu_ms_per_site_round']:.1f} ms per site, "
            f"{figures['dure_work_pct_of_plain_round']:.2f}% of a plain round's CPU"
        )
    if "in_process_run_setup_s" in figures:
        console.print(
            f"per run (not per round): setup {figures['in_process_run_setup_s']:.3f} s "
            f"(admission, node identification, statistics query), final receipts "
            f"{figures['in_process_run_finish_s']:.3f} s"
        )
    return figures


if __name__ == "__main__":
    main()
