"""A recording TCP proxy on loopback: every byte, both directions, per connection.

:class:`RecordingProxy` listens on a free port of 127.0.0.1 and forwards each
connection to ``target``; it runs its own asyncio loop in a thread, so a test
can start it before the processes whose traffic it records.  Each chunk read is
kept as a :class:`Chunk` (connection number, direction, monotonic time, bytes):
``up`` is what the client side (a factory's SuperNode) sent towards the target
(the SuperLink), ``down`` the answer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Chunk", "RecordingProxy", "recording_proxy"]

Direction = Literal["up", "down"]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes read from one side of one proxied connection."""

    connection: int
    direction: Direction
    time: float
    data: bytes


@dataclass
class RecordingProxy:
    """Forwards 127.0.0.1:``port`` to ``target`` and records everything (module docstring)."""

    target: tuple[str, int]
    port: int = 0
    chunks: list[Chunk] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _connections: int = 0

    def sent(self, direction: Direction = "up") -> bytes:
        """Every byte of ``direction``, connection by connection, in order of arrival."""
        return b"".join(self.streams(direction))

    def streams(self, direction: Direction = "up") -> list[bytes]:
        """Each connection's bytes of ``direction`` in order of arrival, one item each."""
        with self._lock:
            chunks = list(self.chunks)
        by_connection: dict[int, list[bytes]] = {}
        for chunk in chunks:
            if chunk.direction == direction:
                by_connection.setdefault(chunk.connection, []).append(chunk.data)
        return [b"".join(parts) for _, parts in sorted(by_connection.items())]

    def total(self, direction: Direction = "up") -> int:
        """How many bytes went in ``direction``."""
        with self._lock:
            return sum(len(c.data) for c in self.chunks if c.direction == direction)

    @property
    def connections(self) -> int:
        """How many connections were accepted."""
        return self._connections

    async def _serve(self, started: threading.Event, stop: asyncio.Event) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        async with server:
            await stop.wait()
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        number = self._connections
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(number, "up", reader, up_writer),
            self._pipe(number, "down", up_reader, writer),
        )

    async def _pipe(
        self,
        number: int,
        direction: Direction,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        try:
            while data := await reader.read(65536):
                with self._lock:
                    self.chunks.append(Chunk(number, direction, time.monotonic(), data))
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with suppress(ConnectionError, OSError):
                await writer.wait_closed()


@contextmanager
def recording_proxy(target: tuple[str, int]) -> Iterator[RecordingProxy]:
    """Run a :class:`RecordingProxy` to ``target`` in a thread for the ``with`` block."""
    proxy = RecordingProxy(target)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(proxy._serve(started, stop))

    thread = threading.Thread(target=run, name=f"proxy-{target[1]}", daemon=True)
    thread.start()
    if not started.wait(30):
        raise AssertionError("the recording proxy did not start")
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()
