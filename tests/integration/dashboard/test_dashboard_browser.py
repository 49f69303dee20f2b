"""The dashboard in a real headless Chromium, against a real server on real data."""

from __future__ import annotations

import sqlite3

import pytest
from tests.integration.dashboard.conftest import M1, M2, M3, M4, Browser, Live

pytestmark = [
    pytest.mark.slow,
    pytest.mark.ci_required(
        "Debian chromium at /usr/bin/chromium (.ci/run installs it with apt-get)"
    ),
]


def _open(browser: Browser, live: Live, token: str | None) -> None:
    browser.page.goto(f"{live.url}/#token={token}" if token else f"{live.url}/")
    browser.page.wait_for_selector("body[data-loaded=true]")


def _texts(browser: Browser, selector: str) -> list[str]:
    texts: list[str] = browser.page.locator(selector).all_inner_texts()
    return texts


def _lineage_sites(browser: Browser, model: str) -> set[str]:
    page = browser.page
    page.select_option("#model-select", model)
    page.wait_for_selector(f"#lineage svg[aria-label='lineage of model {model}']")
    listed = {item.get_attribute("data-site") for item in page.locator("#lineage-sites li").all()}
    drawn = {
        node.get_attribute("data-id")
        for node in page.locator("#lineage svg g.node[data-kind=site]").all()
    }
    assert listed == drawn
    models = {
        node.get_attribute("data-id")
        for node in page.locator("#lineage svg g.node[data-kind=model]").all()
    }
    assert model in models
    return {site for site in listed if site is not None}


def _urns(*names: str) -> set[str]:
    return {f"urn:dure:site:{name}" for name in names}


def test_operator_sees_verified_ledger_policies_and_exact_lineage(
    live: Live, browser: Browser
) -> None:
    _open(browser, live, live.token(live.world.operator))
    page = browser.page
    status = page.locator("#ledger-status")
    assert status.get_attribute("data-state") == "verified", page.inner_text("#ledger")
    size = live.world.services.ledger.store.size()
    assert page.locator("#ledger-entries tbody tr").count() == size
    assert page.inner_text("#member").endswith("the consortium operator")
    assert _texts(browser, "#sites article h3") == [
        "factory-a active",
        "factory-b active",
        "factory-c active",
    ]
    policy = page.inner_text("article[data-site=factory-a] table.policy")
    assert "urn:dure:purpose:bc-manipulation:v1" in policy
    assert "Purposes forbidden" in policy and "urn:dure:purpose:military" in policy
    assert "Minimum contributors per round" in policy
    assert page.locator("#rounds tbody tr").count() == 4
    assert _lineage_sites(browser, M1) == _urns("factory-a", "factory-b")
    assert _lineage_sites(browser, M3) == _urns("factory-a", "factory-b", "factory-c")
    assert _lineage_sites(browser, M4) == _urns("factory-c")
    assert "you are neither" in page.inner_text("#usage")
    assert not [url for url in browser.requests if "/usage" in url]
    assert browser.errors == []


def test_a_revocation_made_through_the_api_appears(live: Live, browser: Browser) -> None:
    _open(browser, live, live.token(live.world.operator))
    page = browser.page
    assert page.inner_text("#revocations") == "No revocations."
    a = live.world.sites["factory-a"]
    answer = live.call(a.key, "POST", "/v1/revocations", a.revocation("retrain-without"))
    assert answer.status_code == 201, answer.text
    assert set(answer.json()["affected_models"]) == {M1, M2, M3}
    page.reload()
    page.wait_for_selector("body[data-loaded=true]")
    rows = page.locator("#revocations-table tbody tr")
    assert rows.count() == 1
    assert "factory-a" in rows.first.inner_text()
    affected = {li.get_attribute("data-model") for li in rows.first.locator("li").all()}
    assert affected == {M1, M2, M3}
    assert page.inner_text("article[data-site=factory-a] h3") == "factory-a revoked"
    state = page.locator("#ledger-status").get_attribute("data-state")
    assert state == "verified", page.inner_text("#ledger-reason")
    assert "policy_revoked" in page.inner_text("#ledger-entries tbody tr >> nth=0")
    assert browser.errors == []


def test_a_site_sees_its_own_usage_and_epsilon_plot_only(live: Live, browser: Browser) -> None:
    b = live.world.sites["factory-b"]
    _open(browser, live, live.token(b.key))
    page = browser.page
    assert page.inner_text("#member").endswith("site factory-b")
    reports = page.locator("#usage article.usage")
    assert reports.count() == 1 and reports.first.get_attribute("data-site") == "factory-b"
    expected = live.call(b.key, "GET", "/v1/sites/factory-b/usage").json()
    assert reports.first.locator(".epsilon-total").inner_text() == expected["epsilon_total"]
    totals = [
        float(dot.get_attribute("data-total") or "nan")
        for dot in reports.first.locator("svg.epsilon circle.point").all()
    ]
    assert totals == [0.5, 1.25, 2.0]
    usage_requests = {url.split("/v1/sites/")[1] for url in browser.requests if "/usage" in url}
    assert usage_requests == {"factory-b/usage"}
    assert browser.errors == []


def test_without_a_token_only_the_public_ledger_shows(live: Live, browser: Browser) -> None:
    _open(browser, live, None)
    page = browser.page
    assert page.locator("#ledger-status").get_attribute("data-state") == "verified"
    assert page.is_visible("#signin")
    assert "Members only" in page.inner_text("#sites")
    assert page.locator("#sites article").count() == 0
    assert not [url for url in browser.requests if "/v1/" in url and "/v1/ledger/" not in url]
    assert browser.errors == []


def test_an_edited_ledger_entry_shows_not_verified(live: Live, browser: Browser) -> None:
    with sqlite3.connect(live.db) as db:
        (leaf,) = db.execute("SELECT leaf FROM dure_ledger_entry WHERE idx = 3").fetchone()
        edited = bytes(leaf).replace(b"factory", b"fakeory", 1)
        assert edited != bytes(leaf)
        db.execute("UPDATE dure_ledger_entry SET leaf = ? WHERE idx = 3", (edited,))
    _open(browser, live, None)
    page = browser.page
    assert page.locator("#ledger-status").get_attribute("data-state") == "failed"
    assert page.inner_text("#ledger-status") == "NOT VERIFIED"
    assert "do not hash to the checkpoint's root" in page.inner_text("#ledger-reason")
    assert browser.errors == []


def test_a_pinned_key_that_differs_shows_not_verified(live: Live, browser: Browser) -> None:
    page = browser.page
    page.goto(f"{live.url}/")
    page.evaluate(
        "localStorage.setItem('dure.dashboard.ledgerKey',"
        " 'other.example/ledger+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')"
    )
    page.reload()
    page.wait_for_selector("body[data-loaded=true]")
    assert page.locator("#ledger-status").get_attribute("data-state") == "failed"
    assert "another ledger key" in page.inner_text("#ledger-reason")
    assert browser.errors == []
