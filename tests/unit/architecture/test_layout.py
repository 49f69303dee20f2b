import importlib

import pytest
from tests.unit.architecture.modules import REPO, ROOTS, module_names


def test_top_level_layout() -> None:
    for name in (
        "pyproject.toml",
        "README.md",
        "server",
        "client",
        "policies",
        "tests",
        "deploy",
        "docs",
    ):
        assert (REPO / name).exists(), f"{name} is missing at the top level"


@pytest.mark.parametrize("root", ROOTS)
def test_no_stray_namespace_init(root: str) -> None:
    # A dure/__init__.py in any root would hide the other two portions (PEP 420).
    assert not (REPO / root / "dure" / "__init__.py").exists()


def test_namespace_spans_the_three_roots() -> None:
    import dure

    paths = {str(p) for p in dure.__path__}
    for root in ROOTS:
        assert str(REPO / root / "dure") in paths
    for portion in ("dure.policies", "dure.client", "dure.server"):
        importlib.import_module(portion)


def test_every_portion_is_typed() -> None:
    for root, package in (("policies", "policies"), ("client", "client"), ("server", "server")):
        assert (REPO / root / "dure" / package / "py.typed").exists()


def test_module_discovery_finds_the_kernel() -> None:
    assert "dure.policies.canonical" in module_names()
