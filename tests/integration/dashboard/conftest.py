"""A real coordinator on loopback with real data, and a real headless Chromium.

``live`` builds the API tests' consortium (three sites with signed identities
and policies, the operator's signed job) on a SQLite file, ledgers four
committed rounds as the federation would, and serves the app with uvicorn on a
free port in a thread.  ``page`` is a Playwright page in Debian's
``/usr/bin/chromium`` that records console errors and every request it makes;
browser tests skip (saying why) only when that browser is not installed.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import ConsoleMessage, Page, sync_playwright
from tests.builders.api import World, build_world, digest_of

from dure.policies.dsse import Envelope
from dure.policies.encoding import sha256, to_hex
from dure.policies.entries import SiteAdmitted
from dure.policies.keys import SigningKey
from dure.server.api.signing import REQUEST_HEADER, sign_request

CHROMIUM = Path("/usr/bin/chromium")
M1, M2, M3, M4 = (digest_of(f"dashboard/m{i}") for i in range(1, 5))


@dataclass
class Live:
    """The world behind a real server at ``url``, called over real HTTP."""

    world: World
    url: str
    db: Path
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url)

    def call(
        self, key: SigningKey, method: str, target: str, body: bytes | Envelope = b""
    ) -> httpx.Response:
        """Send a request signed by ``key`` to the live server."""
        raw = body.to_json() if isinstance(body, Envelope) else body
        headers = {REQUEST_HEADER: sign_request(key, method, target, raw, now=self.world.clock[0])}
        if raw:
            headers["content-type"] = "application/json"
        return self.http.request(method, target, content=raw, headers=headers)

    def token(self, key: SigningKey) -> str:
        """A read token for ``key``, from ``POST /v1/auth/token``."""
        answer = self.call(key, "POST", "/v1/auth/token")
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["token"]
        return token


def _populate(world: World) -> None:
    """Sites, policies, the job, and four committed rounds of one job.

    m1 from a and b; m2 from a and b on m1; m3 from b and c on m2 (c admitted
    then); m4 from c alone, from scratch.
    """
    world.register_all()
    world.play_round(1, ["factory-a", "factory-b"], M1, None, epsilon="0.5")
    world.play_round(2, ["factory-a", "factory-b"], M2, M1, epsilon="1.25")
    c = world.sites["factory-c"]
    admitted = SiteAdmitted(
        time=world.clock[0].replace(microsecond=0),
        job_id="bc-pick-place-1",
        site=c.urn,
        policy_id=to_hex(sha256(c.policy.payload)),
    )
    world.services.ledger.append_all([admitted])
    world.play_round(3, ["factory-b", "factory-c"], M3, M2, epsilon="2.0")
    world.play_round(4, ["factory-c"], M4, None, epsilon="2.5")


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with build_world(f"sqlite:///{tmp_path / 'coordinator.db'}") as built:
        yield built


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    db = tmp_path / "coordinator.db"
    with build_world(f"sqlite:///{db}") as world:
        _populate(world)
        sock = _free_socket()
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            world.client.app,
            lifespan="off",
            ws="none",
            http="h11",
            loop="asyncio",
            log_level="warning",
            access_log=False,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        live = Live(world, f"http://127.0.0.1:{port}", db)
        try:
            thread.start()
            ready = threading.Event()
            while thread.is_alive() and not server.started:
                ready.wait(0.05)
            assert server.started, "uvicorn did not start"
            yield live
        finally:
            live.http.close()
            server.should_exit = True
            thread.join(30)
            sock.close()


@dataclass
class Browser:
    """A page and what it logged: console errors, uncaught errors, requested paths."""

    page: Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        """Record a console message if it is an error."""
        if message.type == "error":
            self.errors.append(message.text)


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"Debian chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = chromium.new_page()
            seen = Browser(page)
            page.on("console", seen.console)
            page.on("pageerror", lambda error: seen.errors.append(str(error)))
            page.on("request", lambda request: seen.requests.append(request.url))
            yield seen
        finally:
            chromium.close()
