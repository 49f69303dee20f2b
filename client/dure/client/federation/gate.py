"""The policy gate: a ClientApp mod that decides, before any data is read, whether to work.

For every instruction that would touch the factory's data (``train``,
``query.stats``) the gate, in this order and reading no episode:

1. decodes the instruction's config (``job``, ``round``, ``site``);
2. checks it is addressed to this site;
3. verifies the job's DSSE signature over the received bytes with the consortium
   operator keys the factory pinned (an unverifiable or unknown signature
   refuses, nothing is parsed before);
4. re-evaluates the factory's **own** copy of its policy (authoritative for its
   data) with the kernel's :func:`~dure.policies.evaluation.evaluate`, at this
   round, with the ε already spent on its data read from its own verified
   receipts and the revocations it knows of.

Any failure answers ``Error(code=1001, reason=JSON)`` listing every reason, and
the handler never runs.  Otherwise the handler runs with the gate's
:class:`Authorisation` (the verified job and the decision, whose ``selector`` is
the only way to choose episodes), available through :func:`authorisation`:
a handler called without the gate finds none and refuses too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from flwr.app import Context, Message
from flwr.clientapp.typing import Mod

from dure.client.federation.errors import FederationSetupError
from dure.client.federation.receipts import ReceiptBox
from dure.client.federation.settings import FactorySettings
from dure.client.federation.wire import REFUSED, RequestError, config_of, refusal
from dure.policies.decision import Decision, RoundContext
from dure.policies.dsse import Envelope
from dure.policies.errors import DureError
from dure.policies.evaluation import evaluate
from dure.policies.job import JobManifest
from dure.policies.keys import VerifyKey
from dure.policies.signed import Opened, open_document

__all__ = ["Authorisation", "authorisation", "authorise", "policy_gate"]

SettingsOf = Callable[[Context], FactorySettings]
_CURRENT: ContextVar[Authorisation | None] = ContextVar("dure_gate", default=None)


@dataclass(frozen=True, slots=True)
class Authorisation:
    """What the gate allowed: the verified job, the round, the local policy's decision."""

    settings: FactorySettings
    job: Opened[JobManifest]
    round: int
    decision: Decision


def authorise(
    message: Message, settings: FactorySettings, now: datetime
) -> Authorisation | tuple[str | None, list[str]]:
    """Decide on ``message`` (see the module docstring); touch no episode.

    Returns
    -------
    Authorisation or tuple
        The authorisation, or ``(job_id or None, reasons)`` for a refusal.
    """
    try:
        config = config_of(message)
        job_json, round, site = config.get("job"), config.get("round"), config.get("site")
        if not isinstance(job_json, bytes) or not isinstance(round, int) or round < 0:
            raise RequestError("config must carry job (bytes) and round (int >= 0)")
    except RequestError as exc:
        return None, [f"[gate.message] {exc}"]
    if site != settings.site:
        return None, [f"[gate.site] addressed to site {site!r}, this is {settings.site!r}"]
    try:
        job = _open_job(job_json, tuple(sorted(settings.operator_keys.items())))
    except DureError as exc:
        return None, [f"[gate.signature] the job does not verify with a pinned key: {exc.message}"]
    decision = evaluate(settings.policy.document, job.document, _context(settings, job, round, now))
    if not decision.allowed:
        lines = [f"[{r.code}] {r.message}" for r in decision.denials]
        return job.document.job_id, lines
    return Authorisation(settings, job, round, decision)


def authorisation() -> Authorisation:
    """The gate's authorisation for the message being handled.

    Raises
    ------
    FederationSetupError
        If no gate ran for this message (a handler wired without the gate).
    """
    current = _CURRENT.get()
    if current is None:
        raise FederationSetupError("a data handler ran without the policy gate")
    return current


def policy_gate(settings_of: SettingsOf, clock: Callable[[], datetime]) -> Mod:
    """Return the gate as a Flower mod (``mods=[policy_gate(...)]``)."""

    def gate(message: Message, context: Context, call_next: Callable[..., Message]) -> Message:
        settings = settings_of(context)
        verdict = authorise(message, settings, clock())
        if not isinstance(verdict, Authorisation):
            job_id, reasons = verdict
            return refusal(message, REFUSED, settings.urn, job_id, reasons)
        with _authorised(verdict):
            return call_next(message, context)

    return gate


@functools.lru_cache(maxsize=8)
def _open_job(job_json: bytes, keys: tuple[tuple[str, VerifyKey], ...]) -> Opened[JobManifest]:
    """Verify and parse a job; the same bytes under the same keys give the same result.

    Cached because a job arrives again with every round; a failure is not cached.
    """
    return open_document(Envelope.from_json(job_json), "job", JobManifest, dict(keys))


@contextmanager
def _authorised(value: Authorisation) -> Iterator[None]:
    token = _CURRENT.set(value)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def _context(
    settings: FactorySettings, job: Opened[JobManifest], round: int, now: datetime
) -> RoundContext:
    box = ReceiptBox(settings.receipts_dir, settings.ledger_key, settings.urn)
    spent = box.epsilon_spent(exclude_job=job.document.job_id)
    return RoundContext(
        consortium=settings.consortium,
        now=now,
        round=round,
        epsilon_spent=spent,
        revoked=settings.policy.document_id in settings.revoked,
    )
