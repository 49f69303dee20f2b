"""Real HTTP servers on 127.0.0.1 for the auditor to talk to: hostile, or a proxy to an app.

:func:`serve` runs a :class:`http.server.ThreadingHTTPServer` in a thread; every
``GET`` is answered by ``answer(path_and_query)`` with ``(status, body,
content type)``.  The auditor reaches it with its real HTTP client, exactly as
``dure audit run --url`` does against a coordinator.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Answer", "serve"]

Answer = Callable[[str], tuple[int, bytes, str]]


@contextmanager
def serve(answer: Answer) -> Iterator[str]:
    """Serve ``answer`` on an ephemeral loopback port; yield the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body, media = answer(self.path)
            self.send_response(status)
            self.send_header("content-type", media)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
