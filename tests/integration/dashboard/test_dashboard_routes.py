"""The dashboard's files as the app serves them: a fixed list, strict headers, no data."""

from __future__ import annotations

from importlib import resources

from tests.builders.api import World

from dure.server.api.routes.dashboard import ASSETS


def test_the_page_is_served_at_the_root_with_a_strict_policy(world: World) -> None:
    world.register_all()
    page = world.client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "/dashboard/app.js" in page.text
    assert "factory-a" not in page.text  # the page holds no data; it reads the API


def test_every_listed_file_is_package_data_and_served(world: World) -> None:
    folder = resources.files("dure.server.api").joinpath("dashboard")
    shipped = {entry.name for entry in folder.iterdir() if entry.is_file()}
    assert shipped == set(ASSETS)
    for name, media in ASSETS.items():
        answer = world.client.get(f"/dashboard/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"] == media
        assert answer.content == folder.joinpath(name).read_bytes()


def test_nothing_else_can_be_named(world: World) -> None:
    for target in (
        "/dashboard/routes.py",
        "/dashboard/..%2Fapp.py",
        "/dashboard/%2e%2e%2fsettings.py",
        "/dashboard/",
    ):
        answer = world.client.get(target)
        assert answer.status_code == 404, target
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "server.not_found"


def test_the_dashboard_is_not_in_the_api_schema(world: World) -> None:
    paths = world.client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not [p for p in paths if p.startswith("/dashboard")]
