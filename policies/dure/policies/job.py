"""The job manifest: a training job as the consortium operator signs it.

Every site's usage policy is evaluated against this document, first by the
coordinator before it samples anyone, then by each factory before it touches
its data (:func:`dure.policies.evaluation.evaluate`).  It is plain JSON with
snake_case fields, strictly validated: an unknown field, a float, a malformed
URN or an inconsistent value is a :class:`~dure.policies.errors.DocumentError`.

Shape (every field required unless a default is shown)::

    {"type": "dure/job/v1", "job_id": "<name>",
     "consortium": "urn:dure:consortium:<name>", "coordinator": "urn:dure:coordinator:<name>",
     "purpose": "urn:dure:purpose:<name>:v<N>",
     "model": {"name": "<name>", "architecture": "<text>", "parameters": <int>},
     "code_hash": "<64 hex>", "rounds": <int >= 1>,
     "aggregation": {"strategy": "<strategy>", "secure": <bool>, "norm_bound": "<decimal>",
                     "params": {"<name>": "<decimal text>" | <int>} = {}},
     "dp": null | {"epsilon", "delta", "clip", "noise_multiplier": "<decimal>", "mode": "<mode>"},
     "min_contributors": <int >= 1>, "recipients": ["<party urn>", ...],
     "episode_selector": [<constraint>, ...] = [],
     "issued": "<timestamp>", "expires": "<timestamp>",
     "duties_accepted": ["attribute", "dure:logToLedger", ...] = [],
     "training": {"local_steps": <int>, "batch_size": <int>, "lr": "<decimal>",
                  "schedule": {"kind": "constant" | "cosine", "rounds": <int> | null,
                               "floor": "<decimal>"},
                  "personalise": {"method": "none" | "finetune", "steps": <int>,
                                  "lr": "<decimal>"}}  (absent: LEGACY_TRAINING)}

``training`` is what the factories do with their data each round (signed, so a
site's policy judges the job as it will run); its defaults,
:data:`DEFAULT_TRAINING`, are the one place the recommended settings live
(``dure consortium init``, ``dure job template`` and the docs read them).  A
manifest without ``training`` (one signed before the field existed) keeps its
bytes and id and trains with :data:`LEGACY_TRAINING`.
``aggregation.params`` is a closed world per strategy (:data:`STRATEGY_PARAMS`).

Settings that cannot be met are refused when the manifest is parsed (so at
``dure job sign``, ``job verify``, ``POST /v1/jobs`` and ``run-job``), each with
the fix: a schedule spanning more rounds than the job has; personalisation
whose method and steps contradict; values out of range; params a strategy does
not have.  What a coordinator can run (a server optimiser or robust aggregator
with secure aggregation or DP; :data:`MEAN_STRATEGIES`) is checked by the
coordinator's ``check_job_supported``, which ``job sign``, ``job verify`` and
``run-job`` call too.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from math import cos, pi
from typing import Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from dure.policies.canonical import JsonValue
from dure.policies.document import CanonicalDocument
from dure.policies.literals import (
    ConsortiumUrn,
    CoordinatorUrn,
    DecimalText,
    HexDigestText,
    Name,
    PartyUrn,
    PurposeId,
    Timestamp,
    parse_decimal,
)
from dure.policies.policy import Constraint

__all__ = [
    "DEFAULT_HIDDEN",
    "DEFAULT_TRAINING",
    "LEGACY_TRAINING",
    "MEAN_STRATEGIES",
    "SERVER_OPTIMISERS",
    "STRATEGY_PARAMS",
    "AggregationSpec",
    "AggregationStrategy",
    "DpMode",
    "DpSpec",
    "JobManifest",
    "ModelSpec",
    "ParamSpec",
    "PersonaliseSpec",
    "ScheduleSpec",
    "TrainingSpec",
]

AggregationStrategy = Literal[
    "fedavg",
    "fedavgm",
    "fedprox",
    "fedadam",
    "fedadagrad",
    "fedyogi",
    "fedmedian",
    "trimmed-mean",
    "krum",
    "multi-krum",
    "bulyan",
]
"""The strategies of :data:`dure.policies.terms.AGGREGATION_STRATEGIES`."""

DpMode = Literal["server-fixed", "server-adaptive", "client-fixed", "client-adaptive"]
"""The modes of :data:`dure.policies.terms.DP_MODES`."""

MEAN_STRATEGIES: Final = frozenset({"fedavg", "fedprox"})
"""The strategies whose aggregate is the weighted mean: the only ones SecAgg+ and DP run."""

SERVER_OPTIMISERS: Final = frozenset({"fedavgm", "fedadam", "fedadagrad", "fedyogi"})
"""Strategies that keep optimiser state (momentum, moments) from round to round."""


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One ``aggregation.params`` entry: its default and its accepted range.

    ``integer`` params are JSON integers; the others decimal text. The range is
    ``low <= value`` (``low < value`` when ``low_open``) and ``value < high``
    when ``high`` is set.
    """

    default: str | int
    low: Decimal
    low_open: bool = False
    high: Decimal | None = None
    integer: bool = False

    def describe(self) -> str:
        """The accepted values, in words (for error messages and docs)."""
        kind = "an integer" if self.integer else "decimal text"
        low = f"{'>' if self.low_open else '>='} {self.low}"
        return f"{kind} {low}" + (f" and < {self.high}" if self.high is not None else "")

    def value(self, given: str | int | None) -> Decimal:
        """``given`` (or the default) as a Decimal; raise ValueError if not accepted."""
        raw = self.default if given is None else given
        if self.integer != isinstance(raw, int):
            raise ValueError(f"must be {self.describe()}, got {raw!r}")
        number = Decimal(raw) if isinstance(raw, int) else parse_decimal(raw)
        above = number > self.low if self.low_open else number >= self.low
        if not above or (self.high is not None and number >= self.high):
            raise ValueError(f"must be {self.describe()}, got {raw!r}")
        return number


_RATE = ParamSpec("1", Decimal(0), low_open=True)
_UNIT = ParamSpec("0", Decimal(0), high=Decimal(1))
_ADAPTIVE = {
    "eta": ParamSpec("0.01", Decimal(0), low_open=True),
    "beta_1": ParamSpec("0.9", Decimal(0), high=Decimal(1)),
    "beta_2": ParamSpec("0.99", Decimal(0), high=Decimal(1)),
    "tau": ParamSpec("0.001", Decimal(0), low_open=True),
}
STRATEGY_PARAMS: Final[dict[str, dict[str, ParamSpec]]] = {
    "fedavg": {},
    "fedprox": {"proximal_mu": ParamSpec("0", Decimal(0))},
    "fedavgm": {"server_learning_rate": _RATE, "server_momentum": _UNIT},
    "fedadam": dict(_ADAPTIVE),
    "fedyogi": dict(_ADAPTIVE),
    "fedadagrad": {"eta": _ADAPTIVE["eta"], "tau": _ADAPTIVE["tau"]},
    "fedmedian": {},
    "trimmed-mean": {"beta": ParamSpec("0.2", Decimal(0), high=Decimal("0.5"))},
    "krum": {"num_malicious_nodes": ParamSpec(0, Decimal(0), integer=True)},
    "multi-krum": {
        "num_malicious_nodes": ParamSpec(0, Decimal(0), integer=True),
        "num_nodes_to_select": ParamSpec(1, Decimal(1), integer=True),
    },
    "bulyan": {"num_malicious_nodes": ParamSpec(0, Decimal(0), integer=True)},
}
"""Every strategy's ``aggregation.params`` (Flower's names and defaults; closed world).

The server optimisers follow Flower's ``FedAvgM`` (``server_learning_rate``,
``server_momentum``), ``FedAdam`` / ``FedYogi`` (``eta``, ``beta_1``, ``beta_2``,
``tau``) and ``FedAdagrad`` (``eta``, ``tau``)."""


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelSpec(_Part):
    """The model the job trains."""

    name: Name
    architecture: StrictStr = Field(min_length=1, max_length=200)
    parameters: StrictInt = Field(ge=0)


class AggregationSpec(_Part):
    """How updates are combined: the strategy, secure aggregation, the update norm bound."""

    strategy: AggregationStrategy
    secure: StrictBool
    norm_bound: DecimalText
    params: dict[Name, StrictStr | StrictInt] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _params(self) -> AggregationSpec:
        accepted = STRATEGY_PARAMS[self.strategy]
        unknown = sorted(set(self.params) - set(accepted))
        if unknown:
            raise ValueError(
                f"params {unknown} are not parameters of {self.strategy}; "
                f"fix: use only {sorted(accepted) or 'no params'}"
            )
        for name, given in self.params.items():
            try:
                accepted[name].value(given)
            except ValueError as exc:
                raise ValueError(
                    f"params.{name} {exc}; fix: give {accepted[name].describe()} "
                    f"(or leave it out: {accepted[name].default!r})"
                ) from None
        return self

    @property
    def norm_bound_value(self) -> Decimal:
        """The L2 norm bound every update must respect, as a :class:`Decimal`."""
        return parse_decimal(self.norm_bound)

    def param(self, name: str) -> Decimal:
        """The strategy's param ``name``: the value given, else its default."""
        return STRATEGY_PARAMS[self.strategy][name].value(self.params.get(name))


class DpSpec(_Part):
    """Differential privacy of the job: its total ε and δ, clipping bound and noise."""

    epsilon: DecimalText
    delta: DecimalText
    clip: DecimalText
    noise_multiplier: DecimalText
    mode: DpMode

    @model_validator(mode="after")
    def _ranges(self) -> DpSpec:
        if self.epsilon_value <= 0 or self.clip_value <= 0:
            raise ValueError("dp.epsilon and dp.clip must be greater than 0")
        if self.delta_value >= 1:
            raise ValueError(f"dp.delta must be below 1, got {self.delta}")
        return self

    @property
    def epsilon_value(self) -> Decimal:
        """The job's total ε over all its rounds."""
        return parse_decimal(self.epsilon)

    @property
    def delta_value(self) -> Decimal:
        """The job's δ."""
        return parse_decimal(self.delta)

    @property
    def clip_value(self) -> Decimal:
        """The clipping bound (initial bound when the mode is adaptive)."""
        return parse_decimal(self.clip)

    @property
    def noise_multiplier_value(self) -> Decimal:
        """The noise multiplier (standard deviation over clipping bound)."""
        return parse_decimal(self.noise_multiplier)


class ScheduleSpec(_Part):
    """The clients' learning-rate schedule over the rounds.

    ``constant``: every round trains at ``training.lr``.  ``cosine``: round *r*
    trains at ``lr * (floor + (1 - floor) * (1 + cos(pi * (r - 1) / R)) / 2)``
    with *R* = ``rounds`` (``null``: the job's rounds), then at ``lr * floor``
    once *r* > *R*; the decay of
    :func:`dure.client.training.local.round_learning_rate`.
    """

    kind: Literal["constant", "cosine"] = "cosine"
    rounds: StrictInt | None = Field(default=None, ge=1, le=1_000_000)
    floor: DecimalText = "0"

    @model_validator(mode="after")
    def _floor(self) -> ScheduleSpec:
        if parse_decimal(self.floor) > 1:
            raise ValueError(
                f"training.schedule.floor {self.floor} is above 1; fix: give the fraction "
                "of training.lr the schedule ends at, between 0 and 1"
            )
        return self


class PersonaliseSpec(_Part):
    """What each factory does with the final consortium model on its own data.

    ``finetune``: ``steps`` steps at learning rate ``lr`` on the site's own
    episodes give its personalised model (kept at the site); ``none``: the
    site keeps the consortium model, and ``steps`` must be 0.
    """

    method: Literal["none", "finetune"] = "none"
    steps: StrictInt = Field(default=0, ge=0, le=1_000_000)
    lr: DecimalText = "0.0003"

    @model_validator(mode="after")
    def _consistent(self) -> PersonaliseSpec:
        if self.method == "finetune" and self.steps == 0:
            raise ValueError(
                "training.personalise.method is finetune with 0 steps; fix: give steps >= 1 "
                'or method "none"'
            )
        if self.method == "none" and self.steps:
            raise ValueError(
                f"training.personalise.method is none but steps is {self.steps}; fix: set "
                'steps to 0, or method "finetune"'
            )
        if not 0 < parse_decimal(self.lr) <= 1:
            raise ValueError(
                f"training.personalise.lr {self.lr} is out of range; fix: give a rate "
                "above 0 and at most 1"
            )
        return self


class TrainingSpec(_Part):
    """Local training at the factories, each round: steps, batch, rate and its schedule."""

    local_steps: StrictInt = Field(default=50, ge=1, le=100_000)
    batch_size: StrictInt = Field(default=256, ge=1, le=65_536)
    lr: DecimalText = "0.003"
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    personalise: PersonaliseSpec = Field(default_factory=PersonaliseSpec)

    @model_validator(mode="after")
    def _rate(self) -> TrainingSpec:
        if not 0 < self.lr_value <= 1:
            raise ValueError(
                f"training.lr {self.lr} is out of range; fix: give a rate above 0 and "
                'at most 1 (e.g. "0.003")'
            )
        return self

    @property
    def lr_value(self) -> Decimal:
        """The clients' base learning rate."""
        return parse_decimal(self.lr)

    def round_lr(self, round: int, rounds: int) -> float:
        """The learning rate the factories train with in ``round`` of a job of ``rounds``."""
        lr = float(self.lr_value)
        if self.schedule.kind == "constant":
            return lr
        span = self.schedule.rounds or rounds
        progress = min(max(round - 1, 0) / max(span, 1), 1.0)
        floor = float(parse_decimal(self.schedule.floor))
        return lr * (floor + (1.0 - floor) * 0.5 * (1.0 + cos(pi * progress)))


DEFAULT_TRAINING: Final = TrainingSpec()
"""The recommended training settings: the one place ``consortium init``, ``job
template`` and the docs take them from."""

LEGACY_TRAINING: Final = TrainingSpec(
    local_steps=50,
    batch_size=256,
    lr="0.003",
    schedule=ScheduleSpec(kind="cosine", rounds=None, floor="0"),
    personalise=PersonaliseSpec(method="none", steps=0, lr="0.0003"),
)
"""What a manifest without ``training`` means, fixed for good.

Manifests signed before ``training`` joined the manifest keep their bytes and
their id: the field is left out of the canonical form of a manifest that did not
set it (see :meth:`JobManifest.to_json_value`), and such a manifest trains with
these settings whatever :data:`DEFAULT_TRAINING` becomes."""

DEFAULT_HIDDEN: Final = (256, 256)
"""The hidden widths of the behaviour-cloning policy ``[run] hidden`` defaults to."""


class JobManifest(CanonicalDocument):
    """A training job, signed by the consortium operator.

    Besides the field checks: ``expires`` is after ``issued``, and
    ``recipients`` and ``duties_accepted`` hold no duplicates.
    """

    document_kind = "job manifest"

    type: Literal["dure/job/v1"]
    job_id: Name
    consortium: ConsortiumUrn
    coordinator: CoordinatorUrn
    purpose: PurposeId
    model: ModelSpec
    code_hash: HexDigestText
    rounds: StrictInt = Field(ge=1, le=1_000_000)
    aggregation: AggregationSpec
    dp: DpSpec | None
    min_contributors: StrictInt = Field(ge=1)
    recipients: tuple[PartyUrn, ...]
    episode_selector: tuple[Constraint, ...] = ()
    issued: Timestamp
    expires: Timestamp
    duties_accepted: tuple[StrictStr, ...] = ()
    training: TrainingSpec = Field(default_factory=lambda: LEGACY_TRAINING)

    @model_validator(mode="after")
    def _consistent(self) -> JobManifest:
        if self.expires <= self.issued:
            raise ValueError("expires must be later than issued")
        for name in ("recipients", "duties_accepted"):
            values: tuple[str, ...] = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} lists a value twice: {list(values)}")
        span = self.training.schedule.rounds
        if span is not None and span > self.rounds:
            raise ValueError(
                f"training.schedule.rounds {span} is longer than the job's {self.rounds} "
                f"rounds; fix: set it to at most {self.rounds} (or null: the job's rounds), "
                "or raise rounds"
            )
        return self

    def to_json_value(self) -> dict[str, JsonValue]:
        """Return the manifest as JSON values; ``training`` only if the manifest set it.

        A manifest signed before ``training`` existed has no such field: leaving it
        out keeps that manifest's canonical bytes (and so its signature and id) as
        signed.  It then trains with :data:`LEGACY_TRAINING`.
        """
        value = super().to_json_value()
        if "training" not in self.model_fields_set:
            del value["training"]
        return value

    @property
    def required_actions(self) -> tuple[str, ...]:
        """The actions the job needs: use, derive, and distribute if it has recipients."""
        return ("use", "derive", "distribute") if self.recipients else ("use", "derive")
