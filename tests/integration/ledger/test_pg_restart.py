"""PostgreSQL restarted under load: appends are retried, nothing is lost, duplicated or forked.

The test starts its own PostgreSQL (``initdb`` and ``pg_ctl`` from the server's
``bin`` folder, as the ``postgres`` user when run as root, on a free loopback
port in a temporary folder), lets several threads append while it restarts the
server twice (``-m fast``: backends are terminated mid-transaction and
mid-commit; then ``-m immediate``: a crash and WAL recovery), and checks that
every acknowledged batch is stored exactly once at the index it was given, that
the indices are contiguous and that the Merkle tree verifies.

A restart cuts commits at random points; a loopback proxy that cuts one
connection exactly at its ``COMMIT`` (before the server gets it, or after the
server committed but before its answer reaches the coordinator) checks both
outcomes deterministically: the batch is stored once, at the index returned.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pytest
from sqlalchemy import func, select

from dure.policies import merkle
from dure.server.ledger.errors import LedgerError
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.ledger.tables import LEDGER_TABLES

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.ci_required(
        "PostgreSQL server binaries (initdb, pg_ctl), on this machine kind and CI"
    ),
]

WRITERS = 4
_ENTRY, _NODE, _HEAD, _ = LEDGER_TABLES


def _bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found and shutil.which("initdb") is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    return Path(found[-1]).parent if found else Path(str(shutil.which("initdb"))).parent


@dataclass
class Server:
    """A private PostgreSQL cluster in ``data``, listening on ``port``."""

    bin: Path
    data: Path
    port: int
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data.parent / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{args[0]} failed: {done.stdout}{done.stderr}"

    def pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", *args)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server() -> Iterator[Server]:
    folder = Path(tempfile.mkdtemp(prefix="dure-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    instance = Server(_bin(), folder / "data", _free_port())
    instance.run("initdb", "-D", str(instance.data), "-U", "postgres", "-A", "trust", "--no-sync")
    instance.pg_ctl("start")
    try:
        yield instance
    finally:
        instance.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Writer:
    """One appending thread: what it was told was stored, and what failed."""

    name: str
    acknowledged: list[tuple[int, list[bytes]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def run(self, store: SqlLedgerStore, stop: threading.Event) -> None:
        sequence = 0
        while not stop.is_set():
            batch = [f"{self.name}-{sequence}-{k}".encode() for k in range(1 + sequence % 3)]
            sequence += 1
            try:
                self.acknowledged.append((store.append(batch), batch))
            except LedgerError as exc:
                self.errors.append(exc.message)
                return


def _wait_for_more(writers: list[Writer], more: int) -> None:
    """Block until the writers have ``more`` acknowledged appends than now (or one failed)."""
    target = sum(len(w.acknowledged) for w in writers) + more
    event = threading.Event()
    while sum(len(w.acknowledged) for w in writers) < target:
        assert not any(w.errors for w in writers), [w.errors for w in writers]
        event.wait(0.05)


def test_appends_survive_postgres_restarts(server: Server) -> None:
    store = SqlLedgerStore.from_url(server.url, pool_size=WRITERS)
    writers = [Writer(f"w{n}") for n in range(WRITERS)]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(store, stop)) for w in writers]
    for thread in threads:
        thread.start()
    try:
        _wait_for_more(writers, 100)
        server.pg_ctl("restart", "-m", "fast")
        _wait_for_more(writers, 100)
        server.pg_ctl("restart", "-m", "immediate")
        _wait_for_more(writers, 100)
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)
    assert [w.errors for w in writers] == [[]] * WRITERS

    size = store.size()
    stored = store.entries(0, size)
    acknowledged = [item for w in writers for item in w.acknowledged]
    for first, batch in acknowledged:  # at the index the writer was given
        assert stored[first : first + len(batch)] == batch
    sent = [entry for _, batch in acknowledged for entry in batch]
    assert sorted(stored) == sorted(sent)  # each exactly once, nothing else
    assert len(set(stored)) == size

    with store.engine.connect() as conn:  # contiguous indices, head agrees
        count, low, high = conn.execute(
            select(func.count(), func.min(_ENTRY.c.idx), func.max(_ENTRY.c.idx))
        ).one()
        assert (count, low, high) == (size, 0, size - 1)
        assert conn.execute(select(_HEAD.c.size)).scalar_one() == size
    assert store.root(size) == merkle.root_hash(stored)
    for index in (0, size // 3, size // 2, size - 1):
        proof = store.inclusion_proof(index, size)
        merkle.verify_inclusion(
            merkle.leaf_hash(stored[index]), index, size, proof, store.root(size)
        )
    middle = size // 2
    consistency = store.consistency_proof(middle, size)
    merkle.verify_consistency(middle, size, consistency, store.root(middle), store.root(size))
    store.close()


_COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"  # a simple-protocol query message "COMMIT"


class CutAtCommit:
    """A loopback TCP proxy to ``port`` that, once armed, cuts the next ``COMMIT``.

    ``mode`` ``"before"``: the COMMIT is never forwarded (the server rolls back);
    ``"after"``: it is forwarded, the server's answer is swallowed and the
    connection closed (the commit happened, the client cannot know).
    """

    def __init__(self, port: int, mode: str) -> None:
        self.port, self.mode = port, mode
        self.armed = threading.Event()
        self.cut = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"postgresql://postgres@127.0.0.1:{self._listener.getsockname()[1]}/postgres"
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> CutAtCommit:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.port))
            swallow = threading.Event()
            threading.Thread(target=self._up, args=(client, upstream, swallow), daemon=True).start()
            threading.Thread(
                target=self._down, args=(upstream, client, swallow), daemon=True
            ).start()

    def _up(self, client: socket.socket, upstream: socket.socket, swallow: threading.Event) -> None:
        while data := _recv(client):
            if _COMMIT in data and self.armed.is_set():
                self.armed.clear()
                if self.mode == "before":
                    self.cut.set()
                    _close(client, upstream)
                    return
                swallow.set()
            upstream.sendall(data)
        _close(client, upstream)

    def _down(
        self, upstream: socket.socket, client: socket.socket, swallow: threading.Event
    ) -> None:
        while data := _recv(upstream):
            if swallow.is_set():  # the server's answer to COMMIT: it committed
                self.cut.set()
                _close(client, upstream)
                return
            client.sendall(data)
        _close(client, upstream)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@pytest.mark.parametrize("mode", ["before", "after"])
def test_an_append_whose_commit_is_cut_is_stored_once(server: Server, mode: str) -> None:
    direct = SqlLedgerStore.from_url(server.url)
    assert direct.append([b"first"]) == 0
    with CutAtCommit(server.port, mode) as proxy:
        store = SqlLedgerStore.from_url(proxy.url, create=False)
        proxy.armed.set()
        assert store.append([b"second", b"third"]) == 1
        assert proxy.cut.is_set()  # the commit really was cut
        assert store.append([b"fourth"]) == 3
        store.close()
    assert direct.entries(0, direct.size()) == [b"first", b"second", b"third", b"fourth"]
    assert direct.root(4) == merkle.root_hash([b"first", b"second", b"third", b"fourth"])
    direct.close()
