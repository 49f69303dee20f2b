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
                     "params": {"<name>": "<text>" | <int>} = {}},
     "dp": null | {"epsilon", "delta", "clip", "noise_multiplier": "<decimal>", "mode": "<mode>"},
     "min_contributors": <int >= 1>, "recipients": ["<party urn>", ...],
     "episode_selector": [<constraint>, ...] = [],
     "issued": "<timestamp>", "expires": "<timestamp>",
     "duties_accepted": ["attribute", "dure:logToLedger", ...] = []}
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

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
    "AggregationSpec",
    "AggregationStrategy",
    "DpMode",
    "DpSpec",
    "JobManifest",
    "ModelSpec",
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

    @property
    def norm_bound_value(self) -> Decimal:
        """The L2 norm bound every update must respect, as a :class:`Decimal`."""
        return parse_decimal(self.norm_bound)


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

    @model_validator(mode="after")
    def _consistent(self) -> JobManifest:
        if self.expires <= self.issued:
            raise ValueError("expires must be later than issued")
        for name in ("recipients", "duties_accepted"):
            values: tuple[str, ...] = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} lists a value twice: {list(values)}")
        return self

    @property
    def required_actions(self) -> tuple[str, ...]:
        """The actions the job needs: use, derive, and distribute if it has recipients."""
        return ("use", "derive", "distribute") if self.recipients else ("use", "derive")
