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
- proof and entry ranges are drawn around the ledger's current size;
- the request is signed (``Dure-Request``, over the exact prepared bytes) by a
  drawn member: the one the route expects, the operator, another site or an
  outsider.

So routes answer 2xx, 401, 403, 404, 409 and 422 from their own logic, not only
from envelope decoding.  Checks: no server error, every status and content type
documented, every body matching its schema, invalid input rejected.  A table of
how many cases reached each status per operation is printed (``-s``); every route
family must see both 2xx and 4xx answers and no 5xx.  Cases are random (not
derandomised): each run explores other inputs; ``DURE_SCHEMATHESIS_EXAMPLES``
sets the cases per operation and mode.
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from tests.builders.api import Party, World, build_world, digest_of, make_party, supernode_line

from dure.policies.dsse import Envelope
from dure.policies.encoding import b64encode, sha256, to_hex
from dure.policies.errors import DureError
from dure.policies.examples import EXAMPLE_ISSUED, EXAMPLE_NOW, example_policy_value
from dure.policies.identity import SiteIdentity, sign_site_identity
from dure.policies.job import JobManifest
from dure.policies.keys import SigningKey
from dure.policies.literals import format_timestamp
from dure.policies.policy import UsagePolicy
from dure.policies.revocation import Revocation
from dure.policies.signed import sign_document
from dure.server.api.signing import REQUEST_HEADER, sign_request

EXAMPLES = int(os.environ.get("DURE_SCHEMATHESIS_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MODELS = (digest_of("m1"), digest_of("m2"), digest_of("m3"))
OUTSIDER = SigningKey.generate()
SITES = ("factory-a", "factory-b", "factory-c")
# Every draw below takes its choices from fixed lists, never from the registry's
# state (which the cases change), so hypothesis can replay and shrink a failure.
_FIRST = ("/v1/models",)  # released before the fuzzed revocations deny every release


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


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root: Path = tmp_path_factory.mktemp("schemathesis")
    with build_world(f"sqlite:///{root / 'coordinator.db'}") as world:
        world.register_all()
        world.play_round(1, ["factory-a", "factory-b", "factory-c"], MODELS[0], None)
        world.play_round(2, ["factory-a", "factory-b"], MODELS[1], MODELS[0])
        second = world.job(job_id="bc-2")
        assert world.call(world.operator, "POST", "/v1/jobs", second).status_code == 201
        world.play_round(1, ["factory-a", "factory-b"], MODELS[2], None, job_id="bc-2")
        c = world.sites["factory-c"]
        assert world.call(c.key, "POST", "/v1/revocations", c.revocation()).status_code == 201
        yield world


def _operations(world: World) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), "the OpenAPI document is invalid"
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    return sorted(operations, key=lambda op: not op.path.startswith(_FIRST))


@pytest.mark.slow
def test_fuzzing_reaches_every_route_with_successes_and_refusals_and_no_server_error(
    fuzzed: World, capsys: pytest.CaptureFixture[str]
) -> None:
    session = requests.Session()
    auth = _Signed(fuzzed)
    session.auth = auth
    operations = _operations(fuzzed)
    assert len(operations) >= 25
    tally = _Tally()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, session, auth, fuzzed, tally)
    total = sum(sum(counts.values()) for counts in tally.statuses.values())
    with capsys.disabled():
        print(f"\nschemathesis: {total} cases over {len(operations)} operations\n{tally.table()}")
    families = tally.families()
    assert set(families) >= {"ledger", "sites", "policies", "revocations", "jobs", "models"}
    for family, counts in families.items():
        assert not any(code >= 500 for code in counts), (family, counts)
        assert any(200 <= code < 300 for code in counts), (family, counts)
        if family != "operations":  # /healthz takes no input to refuse
            assert any(400 <= code < 500 for code in counts), (family, counts)


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    session: requests.Session,
    auth: _Signed,
    world: World,
    tally: _Tally,
) -> None:
    strategy = operation.as_strategy(generation_mode=mode)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        auth.key = world.operator
        if mode is GenerationMode.POSITIVE:
            auth.key = _realise(case, data, world)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            response = case.call(session=session)
        tally.add(operation.label, response.status_code)
        checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS
        case.validate_response(response, checks=checks)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # an operation without parameters or body has no invalid input to generate


# -- making a schema-valid case into what a member sends --------------------------------------


def _realise(case: Any, data: st.DataObject, world: World) -> SigningKey:
    """Fill ``case`` with known names, ranges and signed documents; return the signer."""
    path, method = case.operation.path, case.method.upper()
    site = data.draw(st.sampled_from([*SITES, "factory-x"]), label="site")
    natural = world.operator  # who the route expects: the operator, or the site it names
    if "{site}" in path:
        case.path_parameters = {"site": site}
        natural = world.sites[site].key if site in world.sites else natural
    if "{job_id}" in path:
        case.path_parameters = {"job_id": data.draw(_job_ids(world), label="job_id")}
    if "{digest}" in path:
        case.path_parameters = {"digest": data.draw(_digests(), label="digest")}
    if "{policy_id}" in path:
        case.path_parameters = {"policy_id": data.draw(_policy_ids(world), label="policy_id")}
    if path.startswith("/v1/ledger/"):
        _ranges(case, data, world)
    writer = _DOCUMENTS.get((method, path))
    if writer is not None:
        envelope, natural = writer(data, world, site)
        case.body = json.loads(envelope.to_json())
    elif path.endswith("/release"):
        _release_body(case, data, world)
    elif path.endswith("/retrain-without"):
        case.body = {"site": data.draw(st.sampled_from([_urn("factory-c"), _urn(site)]))}
    elif path.endswith("/auditors") and method == "POST" and data.draw(st.booleans()):
        case.body = {"name": "auditor", "key": b64encode(SigningKey.generate().public.raw)}
    other = world.sites[data.draw(st.sampled_from(SITES), label="a site")].key
    signers = [natural, natural, world.operator, other, OUTSIDER]  # an outsider one in five
    return data.draw(st.sampled_from(signers), label="signer")


def _urn(site: str) -> str:
    return f"urn:dure:site:{site}"


def _job_ids(world: World) -> st.SearchStrategy[str]:
    return st.sampled_from(["bc-pick-place-1", "bc-2", "fz-job-1", "no-such-job"])


def _digests() -> st.SearchStrategy[str]:
    return st.sampled_from([*MODELS, MODELS[2], digest_of("never-trained")])  # m3 releasable


def _policy_ids(world: World) -> st.SearchStrategy[str]:
    def pick(n: int) -> str:
        known = [record.registered.policy_id for record in world.services.registry.policies()]
        return known[n % len(known)] if n < 8 else "ab" * 32

    return st.integers(0, 9).map(pick)


def _ranges(case: Any, data: st.DataObject, world: World) -> None:
    names = {
        "/v1/ledger/proof/inclusion": ("index", "size"),
        "/v1/ledger/proof/consistency": ("first", "second"),
        "/v1/ledger/entries": ("start", "end"),
    }.get(case.operation.path)
    if names is not None:
        values = st.integers(0, 80)  # the ledger grows from 17 entries to about 60
        case.query = {name: data.draw(values, label=name) for name in names}


def _release_body(case: Any, data: st.DataObject, world: World) -> None:
    members = [_urn(name) for name in SITES]
    recipients = data.draw(st.lists(st.sampled_from(members), min_size=1, unique=True))
    case.body = {"recipients": recipients}


def _when(data: st.DataObject, label: str) -> datetime:
    """An issue time: a few days either side of a fixed point, so some are older than others."""
    return EXAMPLE_NOW + timedelta(days=data.draw(st.integers(-3, 3), label=label))


def _identity(data: st.DataObject, world: World, site: str) -> tuple[Envelope, SigningKey]:
    if data.draw(st.booleans(), label="new site") or site not in world.sites:
        site = data.draw(st.sampled_from([f"fz-{n}" for n in range(6)]), label="new name")
        world.sites.setdefault(site, make_party(site))  # its first identity registers it
    party = world.sites[site]
    identity = SiteIdentity(
        site=party.name,
        signing_key=b64encode(party.key.public.raw),
        supernode_key=supernode_line(),
        issued=format_timestamp(_when(data, "identity issued") + timedelta(days=400)),
    )
    return sign_site_identity(identity, party.key), world.operator


def _policy(data: st.DataObject, world: World, site: str) -> tuple[Envelope, SigningKey]:
    party = world.sites.get(site) or make_party(site)
    value = example_policy_value(
        site,
        issued=_when(data, "policy issued"),
        dp_epsilon=data.draw(st.sampled_from([None, "1.0", "10.0"]), label="epsilon"),
        on_revocation=data.draw(st.sampled_from(["exclude-future", "retrain-without"])),
    )
    signer = _document_signer(data, world, party)
    return sign_document("policy", UsagePolicy.from_value(value), signer), party.key


def _revocation(data: st.DataObject, world: World, site: str) -> tuple[Envelope, SigningKey]:
    party = world.sites.get(site) or make_party(site)
    current = _current_policy_id(world, site)
    policy_id = data.draw(st.sampled_from([current, current, to_hex(sha256(b"other"))]))
    value = {
        "type": "dure/revocation/v1",
        "site": party.urn,
        "policy_id": policy_id,
        "issued": format_timestamp(EXAMPLE_NOW),
        "mode": data.draw(st.sampled_from(["exclude-future", "retrain-without"]), label="mode"),
        "reason": "fuzzed",
    }
    signer = _document_signer(data, world, party)
    return sign_document("revocation", Revocation.from_value(value), signer), party.key


def _job(data: st.DataObject, world: World, site: str) -> tuple[Envelope, SigningKey]:
    job_id = data.draw(st.sampled_from([*(f"fz-job-{n}" for n in range(8)), "bc-pick-place-1"]))
    lifetime = data.draw(st.integers(-20, 60), label="days until expiry")
    issued = EXAMPLE_ISSUED - timedelta(days=30)
    expires = max(EXAMPLE_NOW + timedelta(days=lifetime), issued + timedelta(days=1))
    value = json.loads(world.job(job_id=job_id).payload)
    value.update(issued=format_timestamp(issued), expires=format_timestamp(expires))
    signer = data.draw(st.sampled_from([world.operator, world.operator, OUTSIDER]))
    return sign_document("job", JobManifest.from_value(value), signer), world.operator


def _document_signer(data: st.DataObject, world: World, party: Party) -> SigningKey:
    """The site's own key mostly; another site's or an outsider's sometimes."""
    other = world.sites["factory-b" if party.name == "factory-a" else "factory-a"]
    return data.draw(st.sampled_from([party.key, party.key, party.key, other.key, OUTSIDER]))


def _current_policy_id(world: World, site: str) -> str:
    try:
        policy = world.services.registry.site(site).policy
    except DureError:
        policy = None
    return policy.policy_id if policy is not None else to_hex(sha256(b"none"))


_Writer = Callable[[st.DataObject, World, str], tuple[Envelope, SigningKey]]
_DOCUMENTS: dict[tuple[str, str], _Writer] = {
    ("POST", "/v1/sites"): _identity,
    ("POST", "/v1/policies"): _policy,
    ("POST", "/v1/revocations"): _revocation,
    ("POST", "/v1/jobs"): _job,
}
