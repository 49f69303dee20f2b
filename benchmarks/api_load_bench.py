"""The ledger proof routes under load: 1,000,000 entries on PostgreSQL, 500 requests/s.

1. **Fill**: a fresh PostgreSQL schema (``DURE_BENCH_POSTGRES``, default the local
   test server) is migrated (``dure coordinator db upgrade``) and filled with
   ``DURE_BENCH_API_ENTRIES`` (default 1,000,000) realistic ``contribution_accepted``
   entries through :meth:`SqlLedgerStore.append` in batches of 20,000: the same
   ``integrate()`` path every append takes, one transaction per batch.  Set
   ``DURE_BENCH_API_REUSE=1`` to keep the schema and skip the fill next time.
2. **Serve**: ``dure coordinator serve`` (uvicorn, one worker) in a subprocess on a
   loopback port.
3. **Load**: a second process sends inclusion proofs (random index, full size) and
   consistency proofs (random first size, full size), half each, open loop at a
   fixed rate (``DURE_BENCH_API_RATE``, default 500/s) for at most
   ``DURE_BENCH_API_SECONDS`` (default 20 s) and ``rate x seconds`` requests.  A
   request's latency runs from the moment it was *scheduled*, so a stalled server
   cannot hide its queue (no coordinated omission).  Then a closed-loop burst (16
   requests in flight, 5 s) measures the most the server answers per second.

Figures: fill time and rate, achieved throughput, p50/p90/p99/max latency in ms,
errors; saturation throughput and its p50/p99.  Every answer is checked to be a
200 with a proof of the expected length.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

from dure.policies.encoding import sha256, to_hex
from dure.policies.entries import LedgerEntry
from dure.policies.keys import SigningKey
from dure.server.ledger.engine import normalise_url
from dure.server.ledger.service import Ledger
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.storage.migrate import upgrade

POSTGRES = os.environ.get("DURE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ENTRIES = int(os.environ.get("DURE_BENCH_API_ENTRIES", "1000000"))
RATE = int(os.environ.get("DURE_BENCH_API_RATE", "500"))
SECONDS = float(os.environ.get("DURE_BENCH_API_SECONDS", "20"))
REUSE = os.environ.get("DURE_BENCH_API_REUSE") == "1"
WORKERS = int(os.environ.get("DURE_BENCH_API_WORKERS", "1"))
SCHEMA = "dure_bench_api"
BATCH = 20_000
REPO = Path(__file__).resolve().parent.parent
_LAUNCH = (
    "import typer; from dure.cli.coordinator_serve import register; "
    "app = typer.Typer(); register(app); app()"
)

console = Console(highlight=False)


def _entry(i: int) -> bytes:
    """A canonical ``contribution_accepted`` entry (~560 bytes), distinct for each ``i``."""
    d = to_hex(sha256(i.to_bytes(8, "big")))
    return (
        b'{"claim_id":"%b","episodes_root":"%b","examples":%d,"job_id":"bc-pick-place-%d",'
        b'"kind":"contribution_accepted","policy_id":"%b","round":%d,"secure":false,'
        b'"site":"urn:dure:site:factory-%d","time":"2026-11-15T09:00:00Z",'
        b'"update_digest":"%b","v":1}'
    ) % (d.encode(), d[::-1].encode(), 100 + i % 900, i // 10_000, d.encode(),
         1 + i % 50, i % 40, d.encode())  # fmt: skip


def _schema_url() -> str:
    sep = "&" if "?" in POSTGRES else "?"
    return f"{POSTGRES}{sep}options={quote(f'-csearch_path={SCHEMA}')}"


def _prepare() -> tuple[str, float]:
    """Migrate and fill the schema; return its URL and the fill time (0 when reused)."""
    admin = create_engine(normalise_url(POSTGRES))
    with admin.begin() as conn:
        if not REUSE:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    admin.dispose()
    url = _schema_url()
    upgrade(url)
    store = SqlLedgerStore.from_url(url)
    for i in range(3):
        LedgerEntry.from_bytes(_entry(i))  # the filler writes valid canonical entries
    started, before = time.perf_counter(), store.size()
    while (size := store.size()) < ENTRIES:
        store.append([_entry(size + j) for j in range(min(BATCH, ENTRIES - size))])
        if size // BATCH % 10 == 0:
            console.print(f"  filled {store.size():,} entries", style="dim")
    took = time.perf_counter() - started if store.size() != before else 0.0
    store.close()
    if took:  # steady state: what autovacuum would reach, before the clock starts
        vacuum = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
        with vacuum.connect() as conn:
            conn.execute(text("VACUUM (ANALYZE) dure_ledger_entry, dure_ledger_node"))
        vacuum.dispose()
    return url, took


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(url: str, folder: Path, port: int) -> subprocess.Popen[bytes]:
    key = SigningKey.generate()
    key.save(folder / "ledger.key")
    store = SqlLedgerStore.from_url(url, create=False)
    Ledger(store, key, "dure.bench/ledger").checkpoint()  # a signed checkpoint at full size
    store.close()
    roots = ("policies", "client", "server")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / r) for r in roots)}
    command = [sys.executable, "-c", _LAUNCH, "serve", "--db", url, "--port", str(port)]
    command += ["--ledger-key", str(folder / "ledger.key"), "--ledger-name", "dure.bench/ledger"]
    command += ["--workers", str(WORKERS)]
    # JSON logs are formatted as in production but not kept: a log file on the disk that
    # PostgreSQL checkpoints to would add the disk's stalls to the figures.
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(port: int) -> None:
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(300):
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
    raise RuntimeError("the coordinator did not start")


def _targets(count: int, size: int, seed: int) -> list[tuple[str, int]]:
    """Request targets and the proof length each answer must have (checked by the client)."""
    from dure.policies.tree import inclusion_path

    rng = random.Random(seed)
    found = []
    for n in range(count):
        if n % 2 == 0:
            index = rng.randrange(size)
            length = len(inclusion_path(lambda _l, _i: b"", index, size))
            found.append((f"/v1/ledger/proof/inclusion?index={index}&size={size}", length))
        else:
            first = rng.randrange(1, size)
            found.append((f"/v1/ledger/proof/consistency?first={first}&second={size}", -1))
    return found


class _Connections:
    """Keep-alive HTTP/1.1 connections to the server, spoken raw over asyncio streams.

    httpx costs milliseconds of CPU per request, more than the server under test;
    this client costs tens of microseconds, so the load process is not the bottleneck.
    """

    def __init__(self, port: int, size: int) -> None:
        self.port, self.size = port, size
        self.free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def open(self) -> None:
        for _ in range(self.size):
            self.free.put_nowait(await asyncio.open_connection("127.0.0.1", self.port))

    async def get(self, target: str) -> tuple[int, bytes]:
        reader, writer = await self.free.get()
        try:
            writer.write(f"GET {target} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            return status, await reader.readexactly(length)
        finally:
            self.free.put_nowait((reader, writer))

    async def close(self) -> None:
        while not self.free.empty():
            _, writer = self.free.get_nowait()
            writer.close()
            await writer.wait_closed()


def _ok(status: int, body: bytes, length: int) -> bool:
    if status != 200:
        return False
    hashes = json.loads(body)["hashes"]
    return length < 0 or len(hashes) == length


async def _open_loop(
    port: int, targets: list[tuple[str, int]], rate: float, limit: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    pool = _Connections(port, 64)
    await pool.open()

    async def one(target: str, length: int, due: float) -> None:
        nonlocal errors
        try:
            status, body = await pool.get(target)
            ok = _ok(status, body, length)
        except (OSError, ValueError, KeyError, IndexError, asyncio.IncompleteReadError):
            ok = False
        latencies.append(time.perf_counter() - due)
        errors += not ok

    start = time.perf_counter() + 0.1
    tasks = []
    for n, (target, length) in enumerate(targets):
        due = start + n / rate
        if due - start > limit:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(target, length, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    await pool.close()
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed}


async def _closed_loop(
    port: int, targets: list[tuple[str, int]], workers: int, limit: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    queue = iter(targets)
    pool = _Connections(port, workers)
    await pool.open()
    start = time.perf_counter()

    async def worker() -> None:
        nonlocal errors
        for target, length in queue:
            if time.perf_counter() - start > limit:
                return
            sent = time.perf_counter()
            status, body = await pool.get(target)
            latencies.append(time.perf_counter() - sent)
            errors += not _ok(status, body, length)

    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.perf_counter() - start
    await pool.close()
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed}


def _client_process(argv: list[str]) -> None:
    """Entry point of the load process: run one load and print its raw figures as JSON."""
    run: Callable[[Coroutine[Any, Any, dict[str, Any]]], dict[str, Any]] = asyncio.run
    try:
        import uvloop

        run = uvloop.run
    except ImportError:  # pragma: no cover - plain asyncio works too, with more CPU
        pass
    mode, port, size, rate, limit = (
        argv[0],
        int(argv[1]),
        int(argv[2]),
        float(argv[3]),
        float(argv[4]),
    )
    count = int(rate * limit) if mode == "open" else 1_000_000
    targets = _targets(count, size, seed=11 if mode == "open" else 13)
    if mode == "open":
        result = run(_open_loop(port, targets, rate, limit))
    else:
        result = run(_closed_loop(port, targets, int(rate), limit))
    print(json.dumps(result))


def _load(mode: str, port: int, size: int, rate: float, limit: float) -> dict[str, Any]:
    roots = ("policies", "client", "server")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), *(str(REPO / r) for r in roots)]),
    }
    command = [sys.executable, "-m", "benchmarks.api_load_bench", "--client", mode]
    command += [str(port), str(size), str(rate), str(limit)]
    done = subprocess.run(command, env=env, capture_output=True, check=True, timeout=limit + 120)
    raw = json.loads(done.stdout)
    latencies = sorted(raw["latencies"])

    def pct(q: float) -> float:
        return round(1000 * float(latencies[min(len(latencies) - 1, int(q * len(latencies)))]), 3)

    return {
        "requests": len(latencies),
        "errors": raw["errors"],
        "rps": round(len(latencies) / raw["elapsed"], 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(1000 * latencies[-1], 3),
    }


def main() -> dict[str, float]:
    """Fill, serve, load; print and return the figures."""
    url, fill_s = _prepare()
    figures: dict[str, float] = {
        "entries": float(ENTRIES),
        "fill_s": round(fill_s, 1),
        "workers": float(WORKERS),
        "load_average_before": round(os.getloadavg()[0], 2),
    }
    if fill_s:
        figures["fill_entries_per_s"] = round(ENTRIES / fill_s)
    with tempfile.TemporaryDirectory() as folder:
        port = _free_port()
        server = _serve(url, Path(folder), port)
        try:
            _wait(port)
            _load("open", port, ENTRIES, 50, 2.0)  # warm the pool and the caches
            steady = _load("open", port, ENTRIES, RATE, SECONDS)
            burst = _load("closed", port, ENTRIES, 16, 5.0)
        finally:
            server.terminate()
            server.wait(timeout=30)
    figures.update({f"target_{RATE}rps_{k}": float(v) for k, v in steady.items()})
    figures.update({f"saturation_{k}": float(v) for k, v in burst.items()})
    _show(figures)
    return figures


def _show(figures: dict[str, float]) -> None:
    title = f"ledger proof routes, {ENTRIES:,} entries on PostgreSQL, {WORKERS} uvicorn worker(s)"
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in figures.items():
        table.add_row(name, f"{value:,.3f}".rstrip("0").rstrip("."))
    console.print(table)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        _client_process(sys.argv[2:])
    else:
        main()
