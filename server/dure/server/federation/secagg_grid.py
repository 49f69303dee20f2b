"""The coordinator's view of one SecAgg+ round: a ``Grid`` between Flower's workflow and the nodes.

Flower's :class:`~flwr.server.workflow.SecAggPlusWorkflow` talks to the nodes
through a ``Grid``.  :class:`SecureGrid` wraps the run's real grid and, for every
message the workflow sends (all of type ``train``, one ``"secaggplus_configs"`` record
naming the stage):

- **dresses** it for the factory's policy gate: a ``"config"`` record with the
  signed job, the round and the site (every stage), and at the
  ``collect_masked_vectors`` stage the round's full train config (the same as a
  plain round's, with the receipts owed and ``"secagg-max-weight"``) plus the
  global model as ``"arrays"``;
- sends with ``push_messages`` / ``pull_messages`` and a short poll (as
  :func:`~dure.server.federation.exchange.exchange`), never Flower's fixed 3 s;
- notes the first failure of each site (no reply, a refusal, a malformed or
  unverifiable reply) with the stage it happened at;
- at ``collect_masked_vectors``, **judges** each masked reply before Flower sums
  it (:func:`judge_masked`): a reply whose signed claim does not verify, or does
  not name the digest of exactly the masked vector received, is withheld from
  the workflow, which then treats that site as dropped (its pairwise masks are
  removed, its vector never enters the sum); then the contributor minimum is
  settled on the replies left, and if the round must abort no reply is passed on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.common import bytes_to_ndarray
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key, Stage
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from dure.policies.contribution import ContributionClaim, state_digest
from dure.policies.dsse import Envelope
from dure.policies.encoding import HexDigest
from dure.policies.errors import DureError
from dure.policies.keys import VerifyKey
from dure.policies.signed import Opened, open_document
from dure.server.federation.exchange import exchange
from dure.server.federation.validation import ClaimContext
from dure.server.federation.wire import error_reasons

__all__ = ["Evidence", "SecureGrid", "judge_masked", "masked_digest"]

Judge = Callable[[dict[str, Message]], dict[str, Message]]


def masked_digest(chunks: Iterable[bytes]) -> HexDigest:
    """Digest of a masked vector: :func:`state_digest` of its arrays named ``masked.0000``….

    ``chunks`` are the ``masked_parameters`` bytes of a SecAgg+ reply (Flower's
    ``ndarray_to_bytes``); the digest depends only on dtypes, shapes and values.
    The factory's twin is :func:`dure.client.federation.secagg.masked_digest`.
    """
    arrays = {f"masked.{i:04d}": bytes_to_ndarray(chunk) for i, chunk in enumerate(chunks)}
    return state_digest(arrays)


@dataclass(frozen=True, slots=True)
class Evidence:
    """A masked contribution the coordinator accepted: the signed claim and its digest."""

    claim: Opened[ContributionClaim]
    digest: HexDigest


def judge_masked(reply: Message, context: ClaimContext) -> Evidence | list[str]:
    """Check a ``collect_masked_vectors`` reply; return its evidence or why it is rejected."""
    content = reply.content
    secagg, claim = content.get(RECORD_KEY_CONFIGS), content.get("claim")
    examples = content.get("fitres.num_examples")
    if not isinstance(secagg, ConfigRecord) or not isinstance(claim, ConfigRecord):
        return ["malformed SecAgg+ reply: no secaggplus or claim record"]
    if not all(f"fitres.{n}" in content for n in ("parameters", "metrics", "status")):
        return ["malformed SecAgg+ reply: the legacy FitRes records are missing"]
    chunks, envelope = secagg.get(Key.MASKED_PARAMETERS), claim.get("envelope")
    count = examples.get("num_examples") if examples is not None else None
    if not isinstance(chunks, list) or not all(isinstance(c, bytes) for c in chunks):
        return ["malformed SecAgg+ reply: masked_parameters is not a list of bytes"]
    if not isinstance(envelope, bytes) or not isinstance(count, int) or count < 1:
        return ["malformed SecAgg+ reply: no claim envelope or no positive num_examples"]
    try:
        digest = masked_digest(chunks)  # type: ignore[arg-type]
    except (ValueError, TypeError, DureError) as exc:
        return [f"malformed SecAgg+ reply: the masked vector cannot be decoded: {exc}"]
    return _check_claim(envelope, context, digest, count)


def _check_claim(
    envelope: bytes, context: ClaimContext, digest: HexDigest, examples: int
) -> Evidence | list[str]:
    site = context.site
    try:
        keys: dict[str, VerifyKey] = {site.verify_key.key_id: site.verify_key}
        opened = open_document(
            Envelope.from_json(envelope), "contribution", ContributionClaim, keys
        )
    except DureError as exc:
        return [f"contribution claim does not verify with {site.name}'s key: {exc.message}"]
    expected = {
        "job_id": context.job.job_id,
        "job_digest": context.job_digest,
        "round": context.round,
        "site": site.urn,
        "policy_id": site.policy.policy_id if site.policy is not None else None,
        "update_digest": digest,
        "examples": examples,
    }
    problems = [
        f"claim {name} is {getattr(opened.document, name)!s:.80} but should be {value!s:.80}"
        for name, value in expected.items()
        if getattr(opened.document, name) != value
    ]
    return problems or Evidence(opened, digest)


@dataclass
class SecureGrid(Grid):
    """The grid Flower's SecAgg+ workflow uses for one round (see the module docstring).

    Parameters
    ----------
    grid
        The run's grid.
    sites
        Node id -> site URN, for the sampled sites.
    minimal
        Site URN -> the ``"config"`` every stage carries (job, round, site).
    train
        Site URN -> the ``"config"`` of the ``collect_masked_vectors`` stage.
    arrays
        The global model, sent at the ``collect_masked_vectors`` stage.
    judge
        Called with the masked replies by site; returns those Flower may sum.
    timeout, poll
        Seconds to wait for each stage's replies, and between pulls.
    """

    grid: Grid
    sites: Mapping[int, str]
    minimal: Mapping[str, ConfigRecord]
    train: Mapping[str, ConfigRecord]
    arrays: ArrayRecord
    judge: Judge
    timeout: float
    poll: float
    failures: dict[str, list[str]] = field(default_factory=dict)

    @property
    def run(self) -> Run:
        """The run of the wrapped grid."""
        return self.grid.run

    def set_run(self, run: Run) -> None:
        """Set the run of the wrapped grid."""
        self.grid.set_run(run)

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        """Create a message through the wrapped grid."""
        return self.grid.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        """The sampled nodes (the only ones this round may address)."""
        return list(self.sites)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Dress and push ``messages`` (only to sampled nodes)."""
        return self.grid.push_messages([self._dress(m) for m in messages])

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Pull replies from the wrapped grid."""
        return self.grid.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Dress, send, wait (short poll), note failures; judge the masked vectors."""
        dressed = [self._dress(m) for m in messages]
        stage = _stage(dressed[0]) if dressed else ""
        replies = exchange(self.grid, dressed, timeout=timeout or self.timeout, poll=self.poll)
        answered: dict[str, Message] = {}
        for message in dressed:
            node = message.metadata.dst_node_id
            reply = replies.get(node)
            site = self.sites[node]
            if reply is None:
                self._fail(
                    site, [f"no reply at the SecAgg+ {stage} stage within {self.timeout:g} s"]
                )
            elif reply.has_error():
                self._fail(
                    site, [f"at the SecAgg+ {stage} stage: {r}" for r in error_reasons(reply)]
                )
            else:
                answered[site] = reply
        if stage == Stage.COLLECT_MASKED_VECTORS:
            answered = self.judge(answered)
        return list(answered.values())

    def _fail(self, site: str, reasons: list[str]) -> None:
        self.failures.setdefault(site, reasons)

    def _dress(self, message: Message) -> Message:
        node = message.metadata.dst_node_id
        site = self.sites.get(node)
        if site is None:
            raise ValueError(f"the SecAgg+ workflow addressed node {node}, which was not sampled")
        records = dict(message.content)
        if _stage(message) == Stage.COLLECT_MASKED_VECTORS:
            records |= {"config": self.train[site], "arrays": self.arrays}
        else:
            records["config"] = self.minimal[site]
        return Message(
            RecordDict(records),
            dst_node_id=node,
            message_type=message.metadata.message_type,
            group_id=message.metadata.group_id,
        )


def _stage(message: Message) -> str:
    record = message.content.get(RECORD_KEY_CONFIGS)
    stage = record.get(Key.STAGE) if isinstance(record, ConfigRecord) else None
    return str(stage or "")
