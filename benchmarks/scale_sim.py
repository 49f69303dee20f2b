"""One measured run of :mod:`benchmarks.scale_bench`, in its own process.

``python -m benchmarks.scale_sim N WORK OUT``: build N factories under WORK
(:func:`build_factories`), run the job through Flower's Simulation Engine with
Dure's coordinator and ClientApp, and write the figures to OUT (JSON).  Sizes
from the environment (``DURE_BENCH_SCALE_*``, see :mod:`benchmarks.scale_bench`).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from sqlalchemy import create_engine, text
from tests.builders.episodes import make_episode
from tests.builders.federation import (
    CONSORTIUM,
    NOW,
    Consortium,
    Site,
    fixed_now,
    node_config,
    plain_policy,
    supernode_key,
)

from dure.client.federation.clientapp import create_client_app, settings_by_partition
from dure.client.federation.settings import FactorySettings, load_policy
from dure.client.federation.trainer import train_policy
from dure.client.store.store import EpisodeStore
from dure.client.training.model import build_policy_model
from dure.policies.identity import SiteIdentity, sign_site_identity
from dure.policies.keys import SigningKey
from dure.policies.policy import UsagePolicy
from dure.policies.signed import sign_document
from dure.server.federation.models import MemoryModelStore
from dure.server.federation.registry import MemoryRegistry
from dure.server.federation.statistics import ConsortiumStats
from dure.server.ledger.engine import normalise_url
from dure.server.ledger.service import Ledger
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.ledger.tables import LEDGER_TABLES

ROUNDS = int(os.environ.get("DURE_BENCH_SCALE_ROUNDS", "4"))
EPISODES = int(os.environ.get("DURE_BENCH_SCALE_EPISODES", "4"))
FRAMES = int(os.environ.get("DURE_BENCH_SCALE_FRAMES", "40"))
LOCAL_STEPS = int(os.environ.get("DURE_BENCH_SCALE_STEPS", "10"))
TRAINING = {
    "local_steps": LOCAL_STEPS,
    "lr": "0.001",
    "schedule": {"kind": "constant", "rounds": None, "floor": "0"},
}
"""Signed in the job's ``training``: the steps above at a constant 1e-3."""


def build_factories(root: Path, n: int, ledger: Ledger) -> Consortium:
    """N factories, each with its own keys, signed identity and policy, and episode store.

    Every site and policy is registered (and ledgered) in ``ledger``; the
    operator key that signs jobs is fresh.
    """
    consortium = Consortium(SigningKey.generate(), ledger, MemoryRegistry(), MemoryModelStore(), {})
    for index in range(n):
        name = f"factory-{index:04d}"
        key = SigningKey.generate()
        line, pem = supernode_key()
        identity = sign_site_identity(SiteIdentity.create(name, key, line), key)
        policy = sign_document("policy", UsagePolicy.from_value(plain_policy(name)), key)
        home = root / name
        with EpisodeStore.open(home) as store:
            store.add(
                make_episode(1000 * index + seed, site=name, n_frames=FRAMES)
                for seed in range(EPISODES)
            )
        settings = FactorySettings(
            site=name,
            home=home,
            key=key,
            policy=load_policy(policy.to_json(), key, "policy"),
            operator_keys={consortium.operator.key_id: consortium.operator.public},
            ledger_key=ledger.public_key(),
            consortium=CONSORTIUM,
        )
        consortium.sites[name] = Site(name, key, identity, policy, home, settings, pem)
        ledger.append(consortium.registry.register_site(identity, NOW))
        ledger.append(consortium.registry.register_policy(policy, NOW))
    return consortium


def _initial(stats: ConsortiumStats) -> dict[str, Any]:
    model = build_policy_model(stats.observation_dim, len(stats.tasks), stats.action_dim)
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _ledger_bytes(ledger: Ledger, store: SqlLedgerStore) -> dict[str, int]:
    """Entries, their leaf bytes, and the bytes the database holds for the ledger's tables."""
    size = ledger.store.size()
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            db = int(pages) * int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
        else:
            query = text("SELECT pg_total_relation_size(CAST(:t AS regclass))")
            db = sum(int(conn.execute(query, {"t": t.name}).scalar_one()) for t in LEDGER_TABLES)
    return {
        "entries": size,
        "entry_bytes": sum(len(e) for e in ledger.store.entries(0, size)),
        "db_bytes": db,
    }


@contextmanager
def _ledger_url(work: Path) -> Iterator[str]:
    """A SQLite file in ``work``, or a fresh schema on ``DURE_BENCH_SCALE_POSTGRES``."""
    admin_url = os.environ.get("DURE_BENCH_SCALE_POSTGRES")
    if not admin_url:
        yield f"sqlite:///{work / 'ledger.db'}"
        return
    schema = f"scale_{uuid.uuid4().hex}"
    admin = create_engine(normalise_url(admin_url))
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in admin_url else "?"
        yield f"{admin_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def run_child(n: int, work: Path, out: Path) -> None:
    """Build ``n`` factories, run the job through ``run_simulation``, write the figures."""
    logging.getLogger("flwr").setLevel(logging.WARNING)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    with _ledger_url(work) as url:
        store = SqlLedgerStore.from_url(url)
        try:
            _run(n, work, out, store)
        finally:
            store.close()


def _run(n: int, work: Path, out: Path, store: SqlLedgerStore) -> None:
    from flwr.simulation import run_simulation

    import dure.server.federation.rounds as rounds

    ledger = Ledger(store, SigningKey.generate(), "dure.bench/scale")
    started = time.perf_counter()
    consortium = build_factories(work / "sites", n, ledger)
    built = time.perf_counter() - started
    registered = _ledger_bytes(ledger, store)
    configs = [node_config(consortium, site) for site in consortium.sites.values()]
    coordinator = consortium.coordinator(
        initial_model=_initial,
        poll=0.02,
        connect_wait=300.0,
        round_timeout=1800.0,
        query_timeout=1800.0,
    )
    marks: dict[str, float] = {}
    rounds_s: list[float] = []
    waiting: list[float] = []
    ledger_after: list[dict[str, int]] = []
    cpu: list[dict[str, float]] = []
    exchange = getattr(rounds, "exchange")  # noqa: B009 (patched below, to time the waiting)

    def timed_exchange(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return exchange(*args, **kwargs)
        finally:
            waiting.append(time.perf_counter() - began)

    def server_main(grid: Grid, context: Context) -> None:
        marks["main"] = time.time()
        state = coordinator.start(grid, consortium.job(rounds=ROUNDS, training=TRAINING))
        marks["rounds_start"] = time.time()
        setattr(rounds, "exchange", timed_exchange)  # noqa: B010
        for number in range(1, ROUNDS + 1):
            began, before = time.perf_counter(), tree_cpu(os.getpid())
            report = coordinator.play(grid, state, number)
            rounds_s.append(time.perf_counter() - began)
            after = tree_cpu(os.getpid())
            cpu.append({part: after[part] - before[part] for part in after})
            ledger_after.append(_ledger_bytes(ledger, store))
            if report.status != "committed":
                raise SystemExit(f"round {number} {report.status}: {report.reason}")
        setattr(rounds, "exchange", exchange)  # noqa: B010
        marks["rounds_end"] = time.time()
        coordinator.finish(grid, state)
        marks["finish"] = time.time()

    server = ServerApp()
    server.main()(server_main)
    log = work / "client-cpu.jsonl"
    client = FactoryApp(tuple(configs), log)
    marks["simulation"] = time.time()
    run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=n,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
    )
    marks["end"] = time.time()
    figures = _child_figures(n, built, registered, rounds_s, waiting, ledger_after, marks, log)
    figures["round_cpu_s"] = {  # median over the rounds after the first (imports, warm-up)
        part: round(statistics.median(c[part] for c in cpu[1:] or cpu), 3) for part in cpu[0]
    }
    out.write_text(json.dumps(figures, indent=2))


def _child_figures(
    n: int,
    built: float,
    registered: dict[str, int],
    rounds_s: list[float],
    waiting: list[float],
    ledger_after: list[dict[str, int]],
    marks: dict[str, float],
    log: Path,
) -> dict[str, Any]:
    calls = _calls(log)
    train = [spent for kind, spent, _ in calls if kind == "train"]
    first_call = min(began for _, _, began in calls)
    last, first = ledger_after[-1], ledger_after[0]
    per_round = max(len(ledger_after) - 1, 1)
    return {
        "factories": n,
        "rounds": len(rounds_s),
        "local_steps": LOCAL_STEPS,
        "episodes_per_factory": EPISODES,
        "frames_per_episode": FRAMES,
        "build_factories_s": round(built, 2),
        "ray_start_s": round(first_call - marks["simulation"], 2),
        "setup_s": round(marks["rounds_start"] - first_call, 2),
        "rounds_s": [round(r, 3) for r in rounds_s],
        "round_median_s": round(statistics.median(rounds_s), 3),
        "exchange_s": [round(w, 3) for w in waiting],
        "exchange_median_s": round(statistics.median(waiting), 3),
        "coordinator_work_median_s": round(
            statistics.median(r - w for r, w in zip(rounds_s, waiting, strict=True)), 3
        ),
        "finish_s": round(marks["finish"] - marks["rounds_end"], 2),
        "shutdown_s": round(marks["end"] - marks["finish"], 2),
        "client_train_cpu_ms": round(1e3 * statistics.median(train), 1),
        "client_train_calls": len(train),
        "ledger": {
            "entries_registered": registered["entries"],
            "entry_bytes_registered": registered["entry_bytes"],
            "entries_end": last["entries"],
            "entry_bytes_end": last["entry_bytes"],
            "db_bytes_end": last["db_bytes"],
            "entries_per_round": (last["entries"] - first["entries"]) / per_round,
            "entry_bytes_per_round": (last["entry_bytes"] - first["entry_bytes"]) / per_round,
            "db_bytes_per_round": (last["db_bytes"] - first["db_bytes"]) / per_round,
        },
        "marks": marks,
    }


class FactoryApp(ClientApp):
    """Dure's factory ClientApp behind a mod that logs each call's CPU time.

    Ray ships it to its workers as the recipe to build it there (the node
    configs and the log's path), not as the built object: what a ClientApp's
    handlers close over need not be picklable.
    """

    def __init__(self, configs: tuple[dict[str, str], ...], log: Path) -> None:
        super().__init__(mods=[_cpu_probe(log)])
        self._recipe = (configs, log)
        dure_app = create_client_app(settings_by_partition(configs), train_policy, fixed_now)
        for message_type in ("identify", "stats", "receipts"):
            self.query(message_type)(dure_app)
        self.train()(dure_app)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FactoryApp, self._recipe)


def _cpu_probe(log: Path) -> Callable[[Message, Context, Callable[..., Message]], Message]:
    """A ClientApp mod appending each call's message type and thread CPU seconds to ``log``."""

    def probe(message: Message, context: Context, call_next: Callable[..., Message]) -> Message:
        began, started = time.time(), time.thread_time()
        reply = call_next(message, context)
        spent = time.thread_time() - started
        with log.open("a") as handle:
            handle.write(json.dumps([message.metadata.message_type, spent, began]) + "\n")
        return reply

    return probe


def _calls(log: Path) -> list[tuple[str, float, float]]:
    """Each ClientApp call: message type, thread CPU seconds, wall-clock start."""
    return [
        (str(k), float(c), float(t)) for k, c, t in map(json.loads, log.read_text().splitlines())
    ]


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (read from /proc: Linux only)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def tree_cpu(pid: int) -> dict[str, float]:
    """CPU seconds used so far by ``pid`` (``driver``), Ray's workers and Ray's own processes.

    The driver runs the ServerApp (coordinator), Flower's in-process SuperLink and
    the Simulation Engine's dispatch; the workers (``ray::`` processes) run the
    ClientApps; the rest is Ray itself (GCS, raylet, dashboard, log monitor).
    """
    ticks = os.sysconf("SC_CLK_TCK")
    spent = {"driver": 0.0, "workers": 0.0, "ray": 0.0}
    for process in descendants(pid):
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            name = Path(f"/proc/{process}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        used = (int(fields[11]) + int(fields[12])) / ticks
        part = "driver" if process == pid else "workers" if name.startswith(b"ray::") else "ray"
        spent[part] += used
    return spent


if __name__ == "__main__":
    # Imported by its name, so that Ray's workers import FactoryApp rather than unpickle it.
    from benchmarks.scale_sim import run_child as run

    run(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
