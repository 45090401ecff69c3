"""The frame of every API app here: errors as RFC 9457 problem details, the health and demo
routes, the instance header, and what the app opens for its lifetime."""

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware import Middleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .config import AppSettings
from .errors import ClientError
from .instance import InstanceHeader
from .limits import BodyLimit
from .problems import PROBLEMS
from .routes import demo, health

PROBLEM_JSON = "application/problem+json"

Hook = Callable[[], Awaitable[None]]


def api_app(
    settings: AppSettings,
    *,
    title: str,
    routers: Sequence[APIRouter],
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    middleware: Sequence[Middleware] = (),
) -> FastAPI:
    """A FastAPI app with `routers`, the health and demo routes, and problem+json errors."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if on_startup is not None:
            await on_startup()
        yield
        if on_shutdown is not None:
            await on_shutdown()

    app = FastAPI(title=title, lifespan=lifespan)
    app.state.settings = settings
    app.add_exception_handler(ClientError, _on_client_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    for router in (*routers, health.router, demo.router):
        app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, refusal=client_error_response)
    for layer in middleware:
        app.add_middleware(layer.cls, *layer.args, **layer.kwargs)
    # Added last, so it is outermost: every answer names its instance.
    app.add_middleware(InstanceHeader, name=settings.instance_name)
    return app


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": "about:blank", "status": status, "code": code, "title": title, "detail": detail}
    return JSONResponse(
        {**body, **extra}, status_code=status, headers=headers, media_type=PROBLEM_JSON
    )


def client_error_response(exc: ClientError) -> JSONResponse:
    problem = PROBLEMS[type(exc)]
    detail = problem.detail or exc.detail
    headers = {**problem.headers, **exc.headers()}
    return problem_response(problem.status, exc.code, problem.title, detail, headers, **exc.extra)


async def _on_client_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ClientError)
    return client_error_response(exc)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    detail = "The request does not match the API."
    return problem_response(422, "request_invalid", "Invalid request", detail, errors=errors)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return problem_response(
        exc.status_code, code, str(exc.detail), str(exc.detail), dict(exc.headers or {})
    )
