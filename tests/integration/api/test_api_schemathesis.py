"""schemathesis over the coordinator's OpenAPI, reaching every route's own logic.

Every operation is fuzzed with schema-valid (positive) and schema-invalid
(negative) requests.  A positive case is then made into what a member would
really send, from values hypothesis draws:

- a body that is a signed document (POST sites, policies, revocations, jobs) is
  replaced by a real DSSE envelope: a site identity, policy, revocation or job
  manifest built from drawn fields (site, issue time, ε, expiry, job id) and
  signed by the right key, or a wrong one;
- path parameters name what exists (the registered sites, jobs, models and
  policies) most of the time, and something unknown otherwise;
- proof and entry ranges are drawn inside the ledger two times in three (``index <
  size <= ledger size``, ``0 < first <= second``, ``start < end``) and outside it
  otherwise; each answer must be 200 or 400 accordingly, and every 200 is checked:
  entries against the leaves, proofs with the kernel's Merkle verification against
  roots that the ledger-signed pending checkpoint and the witness-cosigned
  published checkpoint vouch for;
- the app has a witness quorum (two of three); cosignatures of the pending
  checkpoint are valid (200) or forged (401), by an unknown key (403), over a stale
  checkpoint (409) or malformed (422), each answer checked;
- the request is signed (``Dure-Request``, over the exact prepared bytes) by an
  honest member (every choice the one a member makes), an outsider, or anyone
  with any choices.

So routes answer 2xx, 401, 403, 404, 409 and 422 from their own logic, not only
from envelope decoding.  Checks: no server error, every status and content type
documented, every body matching its schema, invalid input rejected.  A table of
how many cases reached each status per operation is printed (``-s``); every
operation must see a 2xx and a 4xx answer (except the four in ``NO_REFUSAL``,
which take no input) and none a 5xx.  Cases are random (not derandomised): each
run explores other inputs; ``DURE_SCHEMATHESIS_EXAMPLES`` sets the positive cases
per operation (negative: half).
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from tests.builders.api import Party, World, build_world, digest_of, make_party, supernode_line

from dure.policies.checkpoint import Checkpoint, Cosigner, open_checkpoint
from dure.policies.dsse import Envelope
from dure.policies.encoding import b64decode, b64encode, sha256, to_hex
from dure.policies.errors import DureError
from dure.policies.examples import EXAMPLE_ISSUED, EXAMPLE_NOW, example_policy_value
from dure.policies.identity import SiteIdentity, sign_site_identity
from dure.policies.job import JobManifest
from dure.policies.keys import SigningKey
from dure.policies.literals import format_timestamp
from dure.policies.merkle import leaf_hash, root_hash, verify_consistency, verify_inclusion
from dure.policies.note import NoteSignature, SignedNote
from dure.policies.policy import UsagePolicy
from dure.policies.revocation import Revocation
from dure.policies.signed import sign_document
from dure.server.api.signing import REQUEST_HEADER, sign_request

EXAMPLES = int(os.environ.get("DURE_SCHEMATHESIS_EXAMPLES", "20"))  # negative: half
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MODELS = (digest_of("m1"), digest_of("m2"), digest_of("m3"))
OUTSIDER = SigningKey.generate()
SITES = ("factory-a", "factory-b", "factory-c")
# The consortium's witnesses (two of three publish a checkpoint) and a stranger that
# takes factory-a's witness name with another key.
WITNESSES = {name: Cosigner.generate(f"{name}.test/witness") for name in SITES}
STRANGER = Cosigner.generate("factory-a.test/witness")
QUORUM = 2
WITNESS_TIME = 1_795_000_000
# Operations no member request can make fail: no parameters, no body, public.
NO_REFUSAL = {
    "GET /healthz",
    "GET /v1/ledger/checkpoint",
    "GET /v1/ledger/public-key",
    "GET /v1/witness/checkpoint",
}
# Every draw below takes its choices from fixed lists, never from the registry's
# state (which the cases change), so hypothesis can replay and shrink a failure.
_FIRST = ("/v1/models",)
JOB_IDS = ("bc-pick-place-1", "bc-2", "fz-job-1", "no-such-job")
DIGESTS = (
    MODELS[2],
    MODELS[0],
    MODELS[1],
    digest_of("never-trained"),
)  # released before the fuzzed revocations deny every release


class _Signed(requests.auth.AuthBase):
    """Signs each prepared request (method, path and query, exact body) with ``key``."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.key: SigningKey = world.operator

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        raw = body.encode() if isinstance(body, str) else bytes(body)  # type: ignore[arg-type]
        method, target = request.method or "GET", request.path_url
        try:
            header = sign_request(self.key, method, target, raw, now=self.world.clock[0])
        except DureError:  # a target no signature may cover (too long): sent unsigned
            return request
        request.headers[REQUEST_HEADER] = header
        return request


@dataclass
class _Tally:
    """How many cases reached each status, per operation."""

    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, label: str, status: int) -> None:
        self.statuses[label][status] += 1

    def families(self) -> dict[str, Counter[int]]:
        merged: dict[str, Counter[int]] = defaultdict(Counter)
        for label, counts in self.statuses.items():
            merged[_family(label)].update(counts)
        return merged

    def table(self) -> str:
        codes = sorted({code for counts in self.statuses.values() for code in counts})
        rows = [f"{'operation':48}" + "".join(f"{code:>6}" for code in codes)]
        for label in sorted(self.statuses):
            counts = self.statuses[label]
            rows.append(f"{label[:48]:48}" + "".join(f"{counts[code]:>6}" for code in codes))
        return "\n".join(rows)


def _family(label: str) -> str:
    path = label.split(" ", 1)[1]
    parts = path.split("/")
    return parts[2] if len(parts) > 2 and parts[1] == "v1" else "operations"


@dataclass(frozen=True)
class _Fuzzed:
    """The world under fuzzing and a checkpoint it signed before the tree grew."""

    world: World
    stale: str


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Fuzzed]:
    root: Path = tmp_path_factory.mktemp("schemathesis")
    witness_keys = tuple(c.verifier().to_vkey() for c in WITNESSES.values())
    with build_world(
        f"sqlite:///{root / 'coordinator.db'}", witness_keys=witness_keys, witness_quorum=QUORUM
    ) as world:
        world.register_all()
        stale = world.services.publication.pending()  # published now; stale once the tree grows
        cosigned = _cosigned(stale, [WITNESSES["factory-a"], WITNESSES["factory-b"]])
        assert world.client.post(
            "/v1/witness/cosignatures", content=cosigned.encode(), headers=_TEXT
        ).json()["published"]
        world.play_round(1, ["factory-a", "factory-b", "factory-c"], MODELS[0], None)
        world.play_round(2, ["factory-a", "factory-b"], MODELS[1], MODELS[0])
        second = world.job(job_id="bc-2")
        assert world.call(world.operator, "POST", "/v1/jobs", second).status_code == 201
        world.play_round(1, ["factory-a", "factory-b"], MODELS[2], None, job_id="bc-2")
        c = world.sites["factory-c"]
        assert world.call(c.key, "POST", "/v1/revocations", c.revocation()).status_code == 201
        yield _Fuzzed(world, stale)


def _operations(world: World) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), "the OpenAPI document is invalid"
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    return sorted(operations, key=lambda op: not op.path.startswith(_FIRST))


@pytest.mark.slow
def test_fuzzing_reaches_every_route_with_successes_and_refusals_and_no_server_error(
    fuzzed: _Fuzzed, capsys: pytest.CaptureFixture[str]
) -> None:
    world = fuzzed.world
    session = requests.Session()
    auth = _Signed(world)
    session.auth = auth
    operations = _operations(world)
    assert len(operations) >= 25
    tally = _Tally()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, session, auth, fuzzed, tally)
    total = sum(sum(counts.values()) for counts in tally.statuses.values())
    with capsys.disabled():
        print(f"\nschemathesis: {total} cases over {len(operations)} operations\n{tally.table()}")
    assert set(tally.families()) >= {
        *("ledger", "sites", "policies", "revocations", "jobs", "models", "witness"),
    }
    assert set(tally.statuses) >= NO_REFUSAL
    for label, counts in tally.statuses.items():
        assert not any(code >= 500 for code in counts), (label, counts)
        assert any(200 <= code < 300 for code in counts), (label, counts)
        if label not in NO_REFUSAL:
            assert any(400 <= code < 500 for code in counts), (label, counts)


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    session: requests.Session,
    auth: _Signed,
    fuzzed: _Fuzzed,
    tally: _Tally,
) -> None:
    world = fuzzed.world
    strategy = operation.as_strategy(generation_mode=mode)

    @settings(
        max_examples=EXAMPLES if mode is GenerationMode.POSITIVE else max(1, EXAMPLES // 2),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        auth.key, expect = world.operator, None
        if mode is GenerationMode.POSITIVE:
            auth.key, expect = _realise(case, data, fuzzed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            response = case.call(session=session)
        tally.add(operation.label, response.status_code)
        checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS
        case.validate_response(response, checks=checks)
        if expect is not None:
            expect(response)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # an operation without parameters or body has no invalid input to generate


# -- making a schema-valid case into what a member sends --------------------------------------


_Expect = Callable[[Response], None]
T = TypeVar("T")


@dataclass(frozen=True)
class _Draws:
    """Hypothesis draws for one case; an honest case takes only choices a member would send.

    Every list of choices starts with the ``good`` ones an honest member picks from.
    """

    data: st.DataObject
    honest: bool

    def pick(self, choices: Sequence[T], label: str, good: int = 1) -> T:
        return self.data.draw(st.sampled_from(choices[:good] if self.honest else choices), label)

    def draw(self, strategy: st.SearchStrategy[T], label: str) -> T:
        return self.data.draw(strategy, label)


def _realise(case: Any, data: st.DataObject, fuzzed: _Fuzzed) -> tuple[SigningKey, _Expect | None]:
    """Fill ``case`` with known names, ranges and signed documents.

    Return the signer, and for the ledger and witness routes (whose answer follows
    from the request alone) a check of the status and body the server must give.
    """
    world = fuzzed.world
    path, method = case.operation.path, case.method.upper()
    expect: _Expect | None = None
    # Who sends it: an honest member (every choice below the one a member makes), an
    # outsider, or anyone with any choices.
    role = data.draw(st.sampled_from(["honest", "outsider", "mixed", "outsider"]), label="role")
    draws = _Draws(data, honest=role != "mixed")
    site = draws.pick([*SITES, "factory-x"], "site", good=len(SITES))
    natural = world.operator  # who the route expects: the operator, or the site it names
    if "{site}" in path:
        case.path_parameters = {"site": site}
        natural = world.sites[site].key if site in world.sites else natural
    if "{job_id}" in path:
        case.path_parameters = {"job_id": draws.pick(JOB_IDS, "job_id", good=2)}
    if "{digest}" in path:
        releasing = path.endswith("/release")  # m3 is releasable, m1 and m2 include factory-c
        digest = draws.pick(DIGESTS, "digest", good=1 if releasing else len(MODELS))
        case.path_parameters = {"digest": digest}
    if "{policy_id}" in path:
        case.path_parameters = {"policy_id": _policy_id(draws, world)}
    if path in _RANGES:
        expect = _RANGES[path](case, data, world)
    if (method, path) == ("POST", "/v1/witness/cosignatures"):
        expect = _cosignature(case, data, fuzzed)
    writer = _DOCUMENTS.get((method, path))
    if writer is not None:
        envelope, natural = writer(draws, world, site)
        case.body = json.loads(envelope.to_json())
    elif path.endswith("/release"):
        _release_body(case, data, world)
    elif path.endswith("/retrain-without"):
        case.body = {"site": draws.pick([_urn("factory-c"), _urn(site)], "revoked")}
    elif path.endswith("/auditors") and method == "POST" and draws.pick([True, False], "key"):
        case.body = {"name": "auditor", "key": b64encode(SigningKey.generate().public.raw)}
    if role == "outsider":
        return OUTSIDER, expect
    other = world.sites[data.draw(st.sampled_from(SITES), label="a site")].key
    signers = [natural, natural, world.operator, other, OUTSIDER]  # an outsider one in five
    return draws.pick(signers, "signer"), expect


def _urn(site: str) -> str:
    return f"urn:dure:site:{site}"


def _policy_id(draws: _Draws, world: World) -> str:
    n = draws.draw(st.integers(0, 7 if draws.honest else 9), "policy")
    known = [record.registered.policy_id for record in world.services.registry.policies()]
    return known[n % len(known)] if n < 8 else "ab" * 32


# -- the ledger's ranges and proofs, checked against the signed checkpoints --------------------


@dataclass(frozen=True)
class _Tree:
    """The ledger's leaves, anchored to its signed checkpoints; roots of every prefix."""

    leaves: tuple[bytes, ...]
    roots: tuple[bytes, ...]  # roots[n]: the root of the first n leaves (n >= 1)


_TREES: dict[tuple[int, int], _Tree] = {}


def _tree(world: World) -> _Tree:
    """The ledger as its signed checkpoints vouch for it (read once per size)."""
    size = world.services.ledger.store.size()
    key = (id(world.services), size)
    if key not in _TREES:
        leaves = tuple(world.services.ledger.store.entries(0, size))
        roots = (b"", *(root_hash(leaves[:n]) for n in range(1, size + 1)))
        verifier = world.services.ledger.verifier()
        # The pending checkpoint (the ledger's signature) and the published one (also the
        # witnesses') must both be roots of these leaves, so a proof checked against them is
        # checked against what the coordinator signed, not against what its store says.
        for note in (world.services.publication.pending(), world.services.publication.checkpoint()):
            head = open_checkpoint(note, verifier)
            assert head.size <= size and roots[head.size] == head.root_hash, note
        _TREES[key] = _Tree(leaves, roots)
    return _TREES[key]


def _in_range(data: st.DataObject) -> bool:
    """In the tree's range two draws in three; out of it otherwise."""
    return data.draw(st.sampled_from([True, True, False]), label="in range")


def _refused(response: Response, query: dict[str, int]) -> None:
    assert response.status_code == 400, (query, response.status_code, response.text)


def _inclusion(case: Any, data: st.DataObject, world: World) -> _Expect:
    tree = _tree(world)
    n = len(tree.leaves)
    if _in_range(data):
        size = data.draw(st.integers(1, n), label="size")
        index = data.draw(st.integers(0, size - 1), label="index")
    elif data.draw(st.booleans(), label="beyond the ledger"):
        size = data.draw(st.integers(n + 1, n + 100), label="size")
        index = data.draw(st.integers(0, size - 1), label="index")
    else:
        size = data.draw(st.integers(0, n), label="size")
        index = data.draw(st.integers(size, size + 100), label="index")
    case.query = {"index": index, "size": size}

    def expect(response: Response) -> None:
        if not 0 <= index < size <= n:
            return _refused(response, case.query)
        assert response.status_code == 200, (case.query, response.text)
        body = response.json()
        assert (body["index"], body["size"]) == (index, size)
        proof = [b64decode(h) for h in body["hashes"]]
        verify_inclusion(leaf_hash(tree.leaves[index]), index, size, proof, tree.roots[size])

    return expect


def _consistency(case: Any, data: st.DataObject, world: World) -> _Expect:
    tree = _tree(world)
    n = len(tree.leaves)
    if _in_range(data):
        second = data.draw(st.integers(1, n), label="second")
        first = data.draw(st.integers(1, second), label="first")
    else:
        how = data.draw(st.sampled_from(["zero", "shrinking", "beyond"]), label="how")
        second = data.draw(st.integers(0, n + 100 if how == "beyond" else n), label="second")
        if how == "beyond":
            second = max(second, n + 1)
        if how == "zero":
            first = 0
        elif how == "shrinking":
            first = second + data.draw(st.integers(1, 100), label="more")
        else:
            first = data.draw(st.integers(1, second), label="first")
    case.query = {"first": first, "second": second}

    def expect(response: Response) -> None:
        if not 0 < first <= second <= n:
            return _refused(response, case.query)
        assert response.status_code == 200, (case.query, response.text)
        body = response.json()
        assert (body["first"], body["second"]) == (first, second)
        proof = [b64decode(h) for h in body["hashes"]]
        verify_consistency(first, second, proof, tree.roots[first], tree.roots[second])

    return expect


def _entries(case: Any, data: st.DataObject, world: World) -> _Expect:
    tree = _tree(world)
    n = len(tree.leaves)
    if _in_range(data):
        end = data.draw(st.integers(1, n), label="end")
        start = data.draw(st.integers(0, end - 1), label="start")
    elif data.draw(st.booleans(), label="beyond the ledger"):
        end = data.draw(st.integers(n + 1, n + 100), label="end")
        start = data.draw(st.integers(0, end), label="start")
    else:
        end = data.draw(st.integers(0, n), label="end")
        start = data.draw(st.integers(end + 1, end + 100), label="start")
    case.query = {"start": start, "end": end}

    def expect(response: Response) -> None:
        if not 0 <= start <= end <= n:
            return _refused(response, case.query)
        assert response.status_code == 200, (case.query, response.text)
        got = [(e["index"], b64decode(e["entry"])) for e in response.json()["entries"]]
        assert got == list(enumerate(tree.leaves[start:end], start)), case.query

    return expect


_RANGES: dict[str, Callable[[Any, st.DataObject, World], _Expect]] = {
    "/v1/ledger/proof/inclusion": _inclusion,
    "/v1/ledger/proof/consistency": _consistency,
    "/v1/ledger/entries": _entries,
}


# -- witness cosignatures over the pending checkpoint ----------------------------------------

_TEXT = {"content-type": "text/plain; charset=utf-8"}


def _cosigned(note: str, cosigners: list[Cosigner], timestamp: int = WITNESS_TIME) -> str:
    signed = SignedNote.from_text(note)
    checkpoint = Checkpoint.from_text(signed.text)
    for cosigner in cosigners:
        signed = signed.with_signature(cosigner.cosign(checkpoint, timestamp))
    return signed.to_text()


def _cosignature(case: Any, data: st.DataObject, fuzzed: _Fuzzed) -> _Expect:
    """A cosigned note: valid most of the time, else forged, unknown, stale or malformed."""
    pending = fuzzed.world.services.publication.pending()
    size = Checkpoint.from_text(SignedNote.from_text(pending).text).size
    names = data.draw(st.lists(st.sampled_from(SITES), min_size=1, unique=True), label="witnesses")
    cosigners = [WITNESSES[name] for name in names]
    timestamp = WITNESS_TIME + data.draw(st.integers(0, 10**6), label="timestamp")
    kind = data.draw(
        st.sampled_from(["valid", "valid", "valid", "forged", "unknown", "stale", "malformed"]),
        label="kind",
    )
    status = {"valid": 200, "forged": 401, "unknown": 403, "stale": 409, "malformed": 422}[kind]
    if kind == "valid":
        body = _cosigned(pending, cosigners, timestamp)
    elif kind == "forged":  # one configured witness's line with a bit flipped
        note = SignedNote.from_text(_cosigned(pending, cosigners, timestamp))
        bad = note.signatures[-1]
        flipped = bytes([bad.signature[0] ^ 1]) + bad.signature[1:]
        forged = NoteSignature(bad.name, bad.key_id, flipped)
        body = SignedNote(note.text, (*note.signatures[:-1], forged)).to_text()
    elif kind == "unknown":  # a witness's name with another key
        body = _cosigned(pending, [STRANGER], timestamp)
    elif kind == "stale":  # cosigned properly, but the tree has grown since
        body = _cosigned(fuzzed.stale, cosigners, timestamp)
    else:
        text = _cosigned(pending, cosigners, timestamp)
        body = data.draw(
            st.sampled_from(
                [
                    "not a note\n",
                    text.replace("\n\n", "\n", 1),  # no blank line before the signatures
                    text.rstrip("\n"),  # no final newline
                    SignedNote.from_text(text).text,  # the checkpoint alone, unsigned
                ]
            ),
            label="malformed",
        )
    case.body = body

    def expect(response: Response) -> None:
        assert response.status_code == status, (kind, body, response.status_code, response.text)
        if status == 200:
            answer = response.json()
            assert answer["size"] == size and answer["quorum"] == QUORUM
            assert set(answer["accepted"]) == {c.name for c in cosigners}
            assert set(answer["accepted"]) <= set(answer["cosigned"])
            assert answer["published"] == (len(answer["cosigned"]) >= QUORUM)
        else:
            assert response.headers["content-type"] == ["application/problem+json"]

    return expect


def _release_body(case: Any, data: st.DataObject, world: World) -> None:
    members = [_urn(name) for name in SITES]
    recipients = data.draw(st.lists(st.sampled_from(members), min_size=1, unique=True))
    case.body = {"recipients": recipients}


def _when(draws: _Draws, label: str) -> datetime:
    """An issue time: a few days either side of a fixed point, so some are older than others."""
    return EXAMPLE_NOW + timedelta(days=draws.draw(st.integers(-3, 3), label))


def _identity(draws: _Draws, world: World, site: str) -> tuple[Envelope, SigningKey]:
    if draws.draw(st.booleans(), "new site") or site not in world.sites:
        site = draws.draw(st.sampled_from([f"fz-{n}" for n in range(6)]), "new name")
        world.sites.setdefault(site, make_party(site))  # its first identity registers it
    party = world.sites[site]
    identity = SiteIdentity(
        site=party.name,
        signing_key=b64encode(party.key.public.raw),
        supernode_key=supernode_line(),
        issued=format_timestamp(_when(draws, "identity issued") + timedelta(days=400)),
    )
    return sign_site_identity(identity, party.key), world.operator


def _policy(draws: _Draws, world: World, site: str) -> tuple[Envelope, SigningKey]:
    party = world.sites.get(site) or make_party(site)
    value = example_policy_value(
        site,
        issued=_when(draws, "policy issued"),
        dp_epsilon=draws.draw(st.sampled_from([None, "1.0", "10.0"]), "epsilon"),
        on_revocation=draws.draw(st.sampled_from(["exclude-future", "retrain-without"]), "on"),
    )
    signer = _document_signer(draws, world, party)
    return sign_document("policy", UsagePolicy.from_value(value), signer), party.key


def _revocation(draws: _Draws, world: World, site: str) -> tuple[Envelope, SigningKey]:
    party = world.sites.get(site) or make_party(site)
    current = _current_policy_id(world, site)
    policy_id = draws.pick([current, current, to_hex(sha256(b"other"))], "policy_id")
    value = {
        "type": "dure/revocation/v1",
        "site": party.urn,
        "policy_id": policy_id,
        "issued": format_timestamp(EXAMPLE_NOW),
        "mode": draws.draw(st.sampled_from(["exclude-future", "retrain-without"]), "mode"),
        "reason": "fuzzed",
    }
    signer = _document_signer(draws, world, party)
    return sign_document("revocation", Revocation.from_value(value), signer), party.key


def _job(draws: _Draws, world: World, site: str) -> tuple[Envelope, SigningKey]:
    job_id = draws.pick([*(f"fz-job-{n}" for n in range(8)), "bc-pick-place-1"], "job", good=8)
    lifetime = draws.draw(st.integers(1 if draws.honest else -20, 60), "days until expiry")
    issued = EXAMPLE_ISSUED - timedelta(days=30)
    expires = max(EXAMPLE_NOW + timedelta(days=lifetime), issued + timedelta(days=1))
    value = json.loads(world.job(job_id=job_id).payload)
    value.update(issued=format_timestamp(issued), expires=format_timestamp(expires))
    signer = draws.pick([world.operator, world.operator, OUTSIDER], "job signer")
    return sign_document("job", JobManifest.from_value(value), signer), world.operator


def _document_signer(draws: _Draws, world: World, party: Party) -> SigningKey:
    """The site's own key mostly; another site's or an outsider's sometimes."""
    other = world.sites["factory-b" if party.name == "factory-a" else "factory-a"]
    return draws.pick([party.key, party.key, party.key, other.key, OUTSIDER], "document signer")


def _current_policy_id(world: World, site: str) -> str:
    try:
        policy = world.services.registry.site(site).policy
    except DureError:
        policy = None
    return policy.policy_id if policy is not None else to_hex(sha256(b"none"))


_Writer = Callable[[_Draws, World, str], tuple[Envelope, SigningKey]]
_DOCUMENTS: dict[tuple[str, str], _Writer] = {
    ("POST", "/v1/sites"): _identity,
    ("POST", "/v1/policies"): _policy,
    ("POST", "/v1/revocations"): _revocation,
    ("POST", "/v1/jobs"): _job,
}
