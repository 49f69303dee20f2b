"""One catalog: every Dure error answers its CATALOG status as a problem with its code and hint."""

from __future__ import annotations

import warnings

import pytest
from fastapi import FastAPI
from tests.unit.architecture.modules import all_modules

from dure.policies.errors import CATALOG, DureError
from dure.server.api.errors import ReleaseDeniedError
from dure.server.api.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # starlette.testclient, anyio alias
    from fastapi.testclient import TestClient


def _errors() -> list[type[DureError]]:
    all_modules()
    found: list[type[DureError]] = [DureError]
    for cls in found:
        found += [sub for sub in cls.__subclasses__() if sub not in found]
    return [cls for cls in found if not cls.__module__.startswith("tests.")]


def _app(error: DureError | Exception) -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise error

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("cls", _errors(), ids=lambda c: c.code)
def test_every_error_answers_its_catalog_status(cls: type[DureError]) -> None:
    error = (
        cls("went wrong", ("[a] b",), hint="do this")
        if cls is ReleaseDeniedError
        else cls("went wrong", hint="do this")
    )
    response = _app(error).get("/boom")
    assert response.status_code == CATALOG[cls.code].http_status
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["code"] == cls.code and body["title"] == CATALOG[cls.code].title
    assert body["detail"] == "went wrong" and body["hint"] == "do this"


def test_release_denials_carry_their_reasons() -> None:
    response = _app(ReleaseDeniedError("no", ("[x] one", "[y] two"))).get("/boom")
    assert response.json()["reasons"] == ["[x] one", "[y] two"]


def test_an_unexpected_exception_is_a_500_problem_without_internals() -> None:
    response = _app(KeyError("secret internals")).get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "dure.error" and "secret" not in response.text


def test_unknown_routes_and_methods_are_problems() -> None:
    client = _app(DureError("x"))
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "server.not_found"
    method = client.post("/boom")
    assert method.status_code == 405 and method.json()["code"] == "server.request"
