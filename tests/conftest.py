"""Suite-wide pytest hooks: tests that CI must run fail, not skip, under ``CI=true``.

A test marked ``@pytest.mark.ci_required("what CI provides")`` may skip on a
developer's machine that lacks the tool or right it needs (systemd-analyze, the
right to mount a tmpfs), but ``.ci/run`` provides each of them, so under
``CI=true`` (which ``.ci/run`` sets, as most CI services do) a skip of such a
test means CI lost what it needs: the skip is reported as a failure naming the
test, its skip reason and what CI should provide.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

__all__ = ["pytest_configure", "pytest_runtest_makereport"]

MARKER = "ci_required"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``ci_required`` marker (the suite runs with ``--strict-markers``)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(provided_by): CI must run this test; a skip under CI=true is a failure",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Turn the skip of a ``ci_required`` test into a failure when ``CI`` is ``true``."""
    report = yield
    marker = item.get_closest_marker(MARKER)
    if (
        marker is None
        or not report.skipped
        or hasattr(report, "wasxfail")
        or os.environ.get("CI", "").lower() != "true"
    ):
        return report
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    provided = marker.args[0] if marker.args else "what this test needs"
    report.outcome = "failed"
    report.longrepr = (
        f"{item.nodeid} skipped under CI=true, but CI is expected to run it.\n"
        f"skip reason: {reason}\n"
        f"fix: make .ci/run provide {provided}"
    )
    return report
