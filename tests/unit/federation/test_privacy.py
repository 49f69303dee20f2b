"""Per-site ε accounting with Flower's RDP accountant, and each site's limit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dure.policies.examples import example_job_value, example_policy
from dure.policies.job import DpSpec, JobManifest
from dure.server.federation.errors import FederationError
from dure.server.federation.privacy import PrivacyAccounting, epsilon_text, site_limits


def _dp(noise: str = "5.0", epsilon: str = "4.0", delta: str = "0.00001") -> DpSpec:
    value = example_job_value(dp=True)
    value["dp"] = {**value["dp"], "noise_multiplier": noise, "epsilon": epsilon, "delta": delta}  # type: ignore[dict-item]
    dp = JobManifest.from_value(value).dp
    assert dp is not None
    return dp


def test_limits_are_the_job_epsilon_or_what_the_policy_has_left() -> None:
    policies = {
        "a": example_policy("factory-a", dp_epsilon="10.0"),
        "b": example_policy("factory-b", dp_epsilon=None),
    }
    limits = site_limits(_dp(), policies, {"a": Decimal("7.5")})
    assert limits == {"a": Decimal("2.5"), "b": Decimal("4.0")}


def test_each_site_is_charged_only_for_the_releases_it_entered() -> None:
    accounting = PrivacyAccounting(_dp(), {"a": Decimal("4"), "b": Decimal("4")})
    first = accounting.compose(["a", "b"], 2)
    accounting.compose(["a"], 1)
    assert accounting.spent("b") == pytest.approx(float(first), abs=1e-6)
    assert accounting.spent("a") > accounting.spent("b") > 0
    assert Decimal(first) >= Decimal(repr(accounting.spent("b")))  # rounded up


def test_a_site_is_over_budget_before_the_release_that_would_pass_its_limit() -> None:
    accounting = PrivacyAccounting(_dp(noise="5.0"), {"a": Decimal("1.0"), "b": Decimal("4.0")})
    assert accounting.over_budget(["a", "b"], 2) == {}  # one release costs about 0.79
    accounting.compose(["a", "b"], 2)
    over = accounting.over_budget(["a", "b"], 2)
    assert set(over) == {"a"} and "over its limit 1.0" in over["a"]
    rounds = 1
    while not accounting.over_budget(["b"], 1):
        accounting.compose(["b"], 1)
        rounds += 1
    assert accounting.spent("b") <= 4.0 < accounting.projected("b", 1)
    assert rounds > 2


def test_unaccountable_parameters_are_refused() -> None:
    with pytest.raises(FederationError, match="cannot be accounted"):
        PrivacyAccounting(_dp(noise="0"), {"a": Decimal("1")})
    with pytest.raises(FederationError, match="cannot be accounted"):
        PrivacyAccounting(_dp(delta="0"), {"a": Decimal("1")})


def test_epsilon_text_rounds_up() -> None:
    assert epsilon_text(0.1234561) == "0.123457"
    assert epsilon_text(2.0) == "2.000000"
