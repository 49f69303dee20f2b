"""Differential-privacy accounting for a run: Flower's RDP accountant, one per site.

Each site's privacy loss composes over the releases (noised aggregates) its
update entered.  The coordinator keeps one Flower
:class:`~flwr.serverapp.RdpAccountant` per admitted site (``flwr[dp]``,
Google's ``dp-accounting``), configured for the Gaussian mechanism without
sampling amplification (``no-amplification``, add-or-remove-one neighbours: the
sites are chosen by admission, not sampled at random, so no amplification is
claimed) at the job's δ.

Each site's limit is ``min(job ε, dp_budget(policy) - ε spent by other jobs)``.
Before a round, :meth:`PrivacyAccounting.over_budget` names every sampled site
whose ε would pass its limit if the round released an aggregate with its
update; those sites are refused for the round (ledgered) before anything is
sent.  After an aggregate is released, :meth:`PrivacyAccounting.compose` charges
its contributors.  ε is reported rounded *up* to 6 decimals, so the ledger
never understates it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_CEILING, Decimal

from flwr.serverapp import GaussianPrivacyEvent, PrivacyConfig, RdpAccountant
from flwr.supercore.privacy_accounting import NeighboringRelation, SamplingMethod

from dure.policies.evaluation import dp_budget
from dure.policies.job import DpSpec
from dure.policies.policy import UsagePolicy
from dure.server.federation.errors import FederationError

__all__ = ["PrivacyAccounting", "epsilon_text", "site_limits"]

_QUANTUM = Decimal("0.000001")


def epsilon_text(epsilon: float) -> str:
    """Render ε as a decimal string rounded up to 6 decimals (for ledger entries)."""
    return str(Decimal(repr(float(epsilon))).quantize(_QUANTUM, rounding=ROUND_CEILING))


def site_limits(
    dp: DpSpec, policies: Mapping[str, UsagePolicy], spent: Mapping[str, Decimal]
) -> dict[str, Decimal]:
    """Return each site's ε limit for this job: the job's ε, or less if its policy says so."""
    limits = {}
    for site, policy in policies.items():
        budget = dp_budget(policy)
        left = budget - spent.get(site, Decimal(0)) if budget is not None else None
        limits[site] = dp.epsilon_value if left is None else min(dp.epsilon_value, left)
    return limits


class PrivacyAccounting:
    """Per-site RDP accounting of one run (see the module docstring).

    Parameters
    ----------
    dp
        The job's differential-privacy parameters.
    limits
        Each admitted site's ε limit (:func:`site_limits`), by site URN.

    Raises
    ------
    FederationError
        If the noise multiplier or δ cannot be accounted (noise 0, δ outside
        (0, 1)) or ``flwr[dp]`` is not installed.
    """

    def __init__(self, dp: DpSpec, limits: Mapping[str, Decimal]) -> None:
        self._noise = float(dp.noise_multiplier_value)
        self._population = max(1, len(limits))
        self._limits = dict(limits)
        try:
            self._config = PrivacyConfig(
                target_delta=float(dp.delta_value),
                population_size=self._population,
                neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
                sampling_method=SamplingMethod.NO_AMPLIFICATION,
            )
            self._accountants = {site: RdpAccountant(self._config) for site in limits}
            self._event(1)
        except ValueError as exc:
            raise FederationError(f"the job's DP parameters cannot be accounted: {exc}") from exc
        except ImportError as exc:
            raise FederationError(
                "differential privacy needs Flower's RDP accountant",
                hint="pip install 'flwr[dp]' (it adds dp-accounting).",
            ) from exc

    @property
    def noise_multiplier(self) -> float:
        """The job's noise multiplier."""
        return self._noise

    def spent(self, site: str) -> float:
        """ε spent so far in this run on ``site``'s data (at the job's δ)."""
        accountant = self._accountants[site]
        return accountant.get_privacy_spent().epsilon if accountant.num_releases else 0.0

    def projected(self, site: str, sample_size: int) -> float:
        """ε on ``site``'s data after one more release of ``sample_size`` updates."""
        trial = RdpAccountant(self._config)
        trial.load_state_dict(self._accountants[site].state_dict())
        trial.compose(self._event(sample_size))
        return trial.get_privacy_spent().epsilon

    def over_budget(self, sites: Iterable[str], sample_size: int) -> dict[str, str]:
        """Return, for each of ``sites`` that the next release would take past its limit, why."""
        reasons = {}
        for site in sites:
            after = self.projected(site, sample_size)
            if not after <= float(self._limits[site]):
                reasons[site] = (
                    f"one more round would raise ε on this site's data to {epsilon_text(after)}, "
                    f"over its limit {self._limits[site]} for this job "
                    f"(δ {self._config.target_delta})"
                )
        return reasons

    def compose(self, contributors: Iterable[str], sample_size: int) -> str:
        """Charge one release to ``contributors``; return the largest ε among them, as text."""
        event = self._event(sample_size)
        names = list(contributors)
        for site in names:
            self._accountants[site].compose(event)
        return epsilon_text(max(self.spent(site) for site in names))

    def _event(self, sample_size: int) -> GaussianPrivacyEvent:
        size = min(max(1, sample_size), self._population)
        return GaussianPrivacyEvent(
            noise_multiplier=self._noise, sample_size=size, population_size=self._population
        )
