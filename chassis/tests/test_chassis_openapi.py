"""The generated OpenAPI documents each operation's problem+json answers and its security (all of an
operation's schemes together), and bodies a route reads itself. The services themselves are fuzzed
against their documents by tests/test_openapi_fuzz.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from chassis.errors import PROBLEM_JSON, ServiceError, install_error_handlers
from chassis.openapi import document, install_openapi, problems, raw_body

bearer = HTTPBearer(auto_error=False)


@problems(409)
def conflict_guard(key: Annotated[str, Header(alias="Idempotency-Key")]) -> str:
    if key == "used":
        raise ServiceError("already used", status=409)
    return key


def user(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
    if credentials is None or credentials.credentials != "good":
        raise ServiceError("no token", status=401)
    return "alice"


class Thing(BaseModel):
    name: str


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/things")
    async def listing() -> list[str]:
        return []

    @app.get("/things/{thing_id}", responses={404: {"description": "no such thing"}})
    async def one(thing_id: str) -> dict[str, str]:
        raise ServiceError("no such thing", status=404)

    @app.post("/things", status_code=201)
    async def create(
        thing: Thing, who: Annotated[str, Depends(user)], key: Annotated[str, Depends(conflict_guard)]
    ) -> dict[str, str]:
        return {"name": thing.name}

    install_openapi(app)
    return app


def _responses(schema: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["paths"][path][method]["responses"]
    return found


def test_statuses_follow_from_what_an_operation_is_made_of() -> None:
    schema = document(_app())
    assert set(_responses(schema, "/things", "get")) == {"200", "503"}
    one = _responses(schema, "/things/{thing_id}", "get")
    assert set(one) == {"200", "404", "422", "503"}
    assert one["404"]["description"] == "no such thing", "a hand-written description stays"
    create = _responses(schema, "/things", "post")
    assert set(create) == {"201", "400", "401", "403", "409", "413", "422", "503"}
    for status in ("401", "409", "422", "503"):
        assert create[status]["content"] == {
            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert "Retry-After" in create["503"]["headers"]
    assert "HTTPValidationError" not in schema["components"]["schemas"], "FastAPI's 422 shape is not ours"
    (key,) = [p for p in schema["paths"]["/things"]["post"]["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["required"] is True
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_the_app_serves_the_generated_document() -> None:
    app = _app()
    assert app.openapi() is app.openapi(), "generated once"
    assert "409" in app.openapi()["paths"]["/things"]["post"]["responses"]


cookie = APIKeyCookie(name="session", scheme_name="session", auto_error=False)
csrf = APIKeyHeader(name="X-CSRF-Token", scheme_name="csrf", auto_error=False)


def writer(_s: Annotated[str | None, Depends(cookie)], _c: Annotated[str | None, Depends(csrf)]) -> str:
    return "alice"


def test_the_schemes_of_one_operation_are_required_together_and_raw_bodies_are_documented() -> None:
    app = FastAPI()

    @app.post("/login", openapi_extra=raw_body({"application/json": {"type": "object"}}))
    async def login(who: Annotated[str, Depends(writer)]) -> None:
        return None

    install_openapi(app)
    operation = app.openapi()["paths"]["/login"]["post"]
    assert operation["security"] == [{"session": [], "csrf": []}], "cookie AND header, not either"
    assert operation["requestBody"]["content"] == {"application/json": {"schema": {"type": "object"}}}
    assert {"400", "401", "403", "413", "415", "422"} <= set(operation["responses"])
    assert operation["responses"]["415"]["content"][PROBLEM_JSON]
