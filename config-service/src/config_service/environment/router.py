"""Spring Cloud Config's read API.

``GET /{app}/{profiles}[/{label}]`` answers the JSON Environment; ``/{app}-{profiles}.{ext}`` and
``/{label}/{app}-{profiles}.{ext}`` answer the merged properties as YAML, JSON or .properties.
The merged forms are declared first: ``/main/catalog-docker.yml`` would also match the
Environment route.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from chassis import ServiceError
from chassis.config_client import merge_property_sources
from chassis.keys import unflatten
from config_service.dependencies import ConfigClient, EnvironmentDep, ReaderDep
from config_service.environment.names import InvalidName, check_app, check_label, check_profiles
from config_service.environment.parsing import render_properties, render_yaml
from config_service.environment.repository import RepositoryError, UnknownLabel
from config_service.store import RepositoryUnavailable

__all__ = ["router"]

router = APIRouter(
    tags=["environment"],
    responses={400: {"description": "an application, profile or label that cannot be a name"}},
)


class LabelNotFound(ServiceError):
    status = 404
    title = "Unknown label"


async def _environment(
    service: EnvironmentDep, reader: ConfigClient, app: str, profiles: str, label: str | None
) -> dict[str, Any]:
    names = check_profiles(profiles)
    reader.require_app(check_app(app))  # each service's client reads its own application only
    try:
        return await service.call(partial(service.environment, app, names, check_label(label)))
    except UnknownLabel as exc:
        raise LabelNotFound(str(exc)) from exc
    except RepositoryError as exc:  # e.g. a dir: volume gone or unreadable since start-up
        raise RepositoryUnavailable(str(exc), headers={"Retry-After": "5"}) from exc


def _split(name: str) -> tuple[str, str]:
    # Spring's {application}-{profiles}: the last dash separates (app names may contain dashes).
    app, dash, profiles = name.rpartition("-")
    if not dash or not app or not profiles:
        raise InvalidName("expected /{application}-{profiles}.{extension}")
    return app, profiles


async def _merged(
    service: EnvironmentDep, reader: ConfigClient, name: str, label: str | None, ext: str
) -> Response:
    app, profiles = _split(name)
    environment = await _environment(service, reader, app, profiles, label)
    flat = merge_property_sources([ps["source"] for ps in environment["propertySources"]])
    if ext == "properties":
        return PlainTextResponse(render_properties(flat))
    tree = unflatten(flat)
    if ext == "json":
        return Response(json.dumps(tree, indent=2), media_type="application/json")
    return PlainTextResponse(render_yaml(tree))  # text/plain, as Spring serves it


for _ext in ("yml", "yaml", "json", "properties"):

    def _routes(ext: str) -> None:
        @router.get(f"/{{name}}.{ext}", summary=f"Merged properties as .{ext}", name=f"merged_{ext}")
        async def merged(name: str, service: EnvironmentDep, reader: ReaderDep) -> Response:
            return await _merged(service, reader, name, None, ext)

        @router.get(
            f"/{{label}}/{{name}}.{ext}",
            summary=f"Merged properties at a label as .{ext}",
            name=f"labelled_{ext}",
        )
        async def labelled(label: str, name: str, service: EnvironmentDep, reader: ReaderDep) -> Response:
            return await _merged(service, reader, name, label, ext)

    _routes(_ext)


@router.get("/{app}/{profiles}", summary="Spring Environment at the default label")
async def environment(app: str, profiles: str, service: EnvironmentDep, reader: ReaderDep) -> JSONResponse:
    return JSONResponse(await _environment(service, reader, app, profiles, None))


@router.get("/{app}/{profiles}/{label}", summary="Spring Environment at a branch, tag or commit")
async def environment_at(
    app: str, profiles: str, label: str, service: EnvironmentDep, reader: ReaderDep
) -> JSONResponse:
    return JSONResponse(await _environment(service, reader, app, profiles, label))
