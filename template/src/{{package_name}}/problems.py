"""Errors as RFC 9457 problem details, each with a stable `code` clients can branch on."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .sessions.backend import StoreUnavailable
from .sessions.store import SessionDeleted

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = headers or {}


def session_not_found(session_id: str) -> Problem:
    return Problem(
        404,
        "session_not_found",
        "Session not found",
        f"No session {session_id} in the store, and the request carried no seed to recover it "
        "from. Create a session with POST /api/sessions, or send the last X-Session-Seed.",
    )


def session_deleted(session_id: str) -> Problem:
    return Problem(410, "session_deleted", "Session deleted", f"Session {session_id} was deleted.")


def store_unavailable() -> Problem:
    return Problem(
        503,
        "store_unavailable",
        "Session store unavailable",
        "The session store cannot be reached; nothing was changed. Try again shortly.",
        headers={"Retry-After": "2"},
    )


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


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.code, exc.title, exc.detail, exc.headers)


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


async def _on_store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return await _on_problem(request, store_unavailable())


async def _on_deleted(request: Request, exc: Exception) -> JSONResponse:
    return await _on_problem(request, session_deleted(str(exc)))


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StoreUnavailable, _on_store_unavailable)
    app.add_exception_handler(SessionDeleted, _on_deleted)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
