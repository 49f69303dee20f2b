"""The load process of the API load benchmark: open-loop (fixed rate) or closed-loop requests.

Run by :mod:`benchmarks.api_load_bench` as a second process::

    python -m benchmarks.api_load_client MODE PORT SIZE RATE SECONDS SEED OUT [MIX]

``MODE`` ``open`` sends ``RATE`` requests per second on a fixed schedule for at
most ``SECONDS`` (and ``RATE x SECONDS`` requests); each latency runs from the
moment the request was *due*, so a stalled server cannot hide its queue
(coordinated omission).  ``closed`` keeps ``RATE`` requests in flight for
``SECONDS`` (the most the server answers).  Requests alternate inclusion proofs
(random index, full size) and consistency proofs (random first size, full size),
drawn from ``SEED`` (``MIX`` ``reads``: the checkpoint, public-key and entries
routes instead).  The raw figures go to the JSON file ``OUT``: per request
its latency, how late the load process itself dispatched it (its own CPU
starvation, not the server's), the status and a digest of the body, which the
parent compares with the body it expects.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

__all__ = ["PAGE", "digest", "entry", "main", "target_path", "targets"]

PAGE = 10  # entries per page in the ``reads`` mix
_POOL = 64  # keep-alive connections; more than the requests ever in flight at 500/s


def entry(i: int) -> bytes:
    """A canonical ``contribution_accepted`` entry (~560 bytes), distinct for each ``i``."""
    d = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
    return (
        b'{"claim_id":"%b","episodes_root":"%b","examples":%d,"job_id":"bc-pick-place-%d",'
        b'"kind":"contribution_accepted","policy_id":"%b","round":%d,"secure":false,'
        b'"site":"urn:dure:site:factory-%d","time":"2026-11-15T09:00:00Z",'
        b'"update_digest":"%b","v":1}'
    ) % (d.encode(), d[::-1].encode(), 100 + i % 900, i // 10_000, d.encode(),
         1 + i % 50, i % 40, d.encode())  # fmt: skip


def targets(count: int, size: int, seed: int, mix: str = "proofs") -> list[tuple[str, int, int]]:
    """``count`` requests ``(kind, a, b)``.

    ``proofs``: inclusion and consistency proofs, alternately.  ``reads``: the
    checkpoint, the public key and a page of ``PAGE`` entries, in turn.
    """
    rng = random.Random(seed)
    found = []
    for n in range(count):
        if mix == "reads":
            kind = ("checkpoint", "public-key", "entries")[n % 3]
            start = rng.randrange(size - PAGE)
            found.append((kind, start, start + PAGE))
        elif n % 2 == 0:
            found.append(("inclusion", rng.randrange(size), size))
        else:
            found.append(("consistency", rng.randrange(1, size), size))
    return found


def target_path(kind: str, a: int, b: int) -> str:
    """The request target of ``(kind, a, b)``."""
    if kind in ("checkpoint", "public-key"):
        return f"/v1/ledger/{kind}"
    if kind == "entries":
        return f"/v1/ledger/entries?start={a}&end={b}"
    names = ("index", "size") if kind == "inclusion" else ("first", "second")
    return f"/v1/ledger/proof/{kind}?{names[0]}={a}&{names[1]}={b}"


def digest(body: bytes) -> str:
    """A short digest of a response body, compared by the parent."""
    return hashlib.sha256(body).hexdigest()[:16]


class _Connections:
    """Keep-alive HTTP/1.1 connections spoken raw over asyncio streams (tens of µs a request)."""

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


_FAILURES = (OSError, ValueError, IndexError, asyncio.IncompleteReadError)


async def _open_loop(port: int, paths: list[str], rate: float, limit: float) -> dict[str, Any]:
    count = min(len(paths), int(rate * limit))
    latencies, lags = [0.0] * count, [0.0] * count
    results: list[tuple[int, str]] = [(0, "")] * count
    pool = _Connections(port, _POOL)
    await pool.open()

    async def one(n: int, due: float) -> None:
        lags[n] = time.perf_counter() - due
        try:
            status, body = await pool.get(paths[n])
            results[n] = (status, digest(body))
        except _FAILURES as exc:
            results[n] = (0, type(exc).__name__)
        latencies[n] = time.perf_counter() - due

    start = time.perf_counter() + 0.1
    tasks = []
    for n in range(count):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    await pool.close()
    return {"latencies": latencies, "lags": lags, "results": results, "elapsed": elapsed}


async def _closed_loop(port: int, paths: list[str], workers: int, limit: float) -> dict[str, Any]:
    latencies: list[float] = []
    results: list[tuple[int, str]] = []
    pool = _Connections(port, workers)
    await pool.open()
    start = time.perf_counter()
    queue = iter(range(len(paths)))

    async def worker() -> None:
        for n in queue:
            if time.perf_counter() - start > limit:
                return
            sent = time.perf_counter()
            try:
                status, body = await pool.get(paths[n])
                result = (status, digest(body))
            except _FAILURES as exc:
                result = (0, type(exc).__name__)
            latencies.append(time.perf_counter() - sent)
            results.append(result)

    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.perf_counter() - start
    await pool.close()
    # closed loop: answers come back in completion order, so digests are not checked
    return {"latencies": latencies, "lags": [], "results": results, "elapsed": elapsed}


def main(argv: list[str]) -> None:
    """Run one load (see the module doc) and write its raw figures to ``OUT``."""
    run: Callable[[Coroutine[Any, Any, dict[str, Any]]], dict[str, Any]] = asyncio.run
    try:
        import uvloop

        run = uvloop.run
    except ImportError:  # pragma: no cover - plain asyncio works too, with more CPU
        pass
    mode, port, size = argv[0], int(argv[1]), int(argv[2])
    mix = argv[7] if len(argv) > 7 else "proofs"
    rate, limit, seed, out = float(argv[3]), float(argv[4]), int(argv[5]), Path(argv[6])
    count = int(rate * limit) if mode == "open" else 200_000
    paths = [target_path(*t) for t in targets(count, size, seed, mix)]
    if mode == "open":
        result = run(_open_loop(port, paths, rate, limit))
    else:
        result = run(_closed_loop(port, paths, int(rate), limit))
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
