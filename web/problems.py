"""Errors as RFC 9457 problem details (API) or as a page (browser), from one mapping.

Domain errors keep their sentence: it already says what to do. Unexpected errors are logged
with their traceback and answered without any detail.
"""

from __future__ import annotations

import errno
import logging
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from config.errors import RecogError
from workflow import (
    Conflict,
    Forbidden,
    GuardFailed,
    IllegalTransition,
    NotFound,
    StaleVersion,
    TooLarge,
    TranscriptRejected,
    UnsupportedDocument,
    ValidationFailed,
)

log = logging.getLogger("recog.web")
PROBLEM = "application/problem+json"

STATUS: list[tuple[type[Exception], int, str]] = [
    (StaleVersion, 412, "Precondition Failed"),
    (Conflict, 409, "Conflict"),
    (NotFound, 404, "Not Found"),
    (TooLarge, 413, "Content Too Large"),
    (UnsupportedDocument, 415, "Unsupported Media Type"),
    (ValidationFailed, 422, "Unprocessable Content"),
    (GuardFailed, 422, "Unprocessable Content"),
    (IllegalTransition, 409, "Conflict"),
    (Forbidden, 403, "Forbidden"),
]


class Problem(Exception):
    """An HTTP-level refusal raised by the web layer itself (auth, CSRF, limits)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        code: str = "http",
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.headers = headers or {}
        self.code = code


class SignIn(Exception):
    """Not signed in (or the session ended): a page sends the browser to the sign-in page."""


def unauthorized() -> Problem:
    """The API's answer to a request without a valid session or token."""
    return Problem(
        401,
        "Unauthorized",
        "sign in, or send an API token as 'Authorization: Bearer TOKEN'",
        code="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="recog"'},
    )


class BodyTooLarge(StarletteHTTPException):
    """A request body passed its route's limit while it was read (``web.uploads``). An HTTP
    exception, so that FastAPI's body parsing passes it on instead of answering 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body may have at most {limit} bytes")
        self.limit = limit


# The database's or the disk's own words for "no room" and "read-only": the service is
# unavailable for a while, not broken (SQLite's messages; PostgreSQL's SQLSTATEs
# 53100 disk full and 25006 read-only transaction).
_UNAVAILABLE_MESSAGES = ("database or disk is full", "readonly database", "read-only file system")
_UNAVAILABLE_SQLSTATES = ("53100", "25006")
_UNAVAILABLE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk is full or the database read-only (503, not 500)."""
    if isinstance(exc, OSError):
        return exc.errno in _UNAVAILABLE_ERRNOS
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if state in _UNAVAILABLE_SQLSTATES:
            return True
        text = str(orig).lower()
        return any(m in text for m in _UNAVAILABLE_MESSAGES)
    return False


def status_of(exc: Exception) -> tuple[int, str, str]:
    """(status, title, code) for a domain error."""
    for cls, status, title in STATUS:
        if isinstance(exc, cls):
            return status, title, getattr(exc, "code", "error")
    return 400, "Bad Request", getattr(exc, "code", "error")


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    code: str = "error",
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://recog.invalid/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _where(exc: Exception) -> dict[str, Any] | None:
    """Where in an uploaded file the refusal lies, as members a program can read."""
    if isinstance(exc, TranscriptRejected):
        return {"file": exc.filename, "line": exc.line, "element": exc.element}
    return None


def _wants_page(request: Request) -> bool:
    return not request.url.path.startswith("/api/")


class ErrorPage(Protocol):
    """Renders the page for a refusal: given by the app (``web.pages.error_page``), so this
    module needs nothing from the pages."""

    def __call__(
        self,
        request: Request,
        status: int,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> Response: ...


def install(app: FastAPI, error_page: ErrorPage) -> None:
    """Register the handlers: problem details for the API, ``error_page`` for the browser."""

    def _page(
        request: Request,
        status: int,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return error_page(request, status, title, detail, headers=headers)

    @app.exception_handler(RecogError)
    async def _domain(request: Request, exc: RecogError) -> Response:
        status, title, code = status_of(exc)
        if _wants_page(request):
            return _page(request, status, title, exc.message)
        return problem_response(
            status, title, exc.message, code=code, instance=request.url.path, extra=_where(exc)
        )

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        if _wants_page(request):
            return _page(request, exc.status, exc.title, exc.detail, exc.headers)
        return problem_response(
            exc.status,
            exc.title,
            exc.detail,
            code=exc.code,
            instance=request.url.path,
            headers=exc.headers,
        )

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> Response:
        detail = str(exc.detail)
        if _wants_page(request):
            return _page(request, 413, "Content Too Large", detail)
        return problem_response(
            413, "Content Too Large", detail, code="too_large", instance=request.url.path
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = str(exc.detail)
        title = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, "Error")
        if _wants_page(request):
            return _page(request, exc.status_code, title, detail, dict(exc.headers or {}))
        return problem_response(
            exc.status_code,
            title,
            detail,
            code="http",
            instance=request.url.path,
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ][:20]
        detail = (
            "; ".join(f"{'.'.join(e['loc'][1:] or e['loc'])}: {e['msg']}" for e in errors)
            or "the request is malformed"
        )
        if _wants_page(request):
            return _page(request, 422, "Unprocessable Content", detail)
        return problem_response(
            422,
            "Unprocessable Content",
            detail,
            code="invalid",
            instance=request.url.path,
            extra={"errors": errors},
        )

    async def _out_of_room(request: Request, exc: Exception) -> Response:
        if not unavailable(exc):
            return await _unexpected(request, exc)
        # The operator must make room (or the database writable): say so in the log once
        # per request, without the traceback; the client is told to come back.
        log.error("unavailable on %s %s: %s", request.method, request.url.path, exc)
        seconds = str(request.app.state.runtime.settings.retry_after_seconds)
        detail = "Recog cannot store anything at the moment; try again later"
        headers = {"Retry-After": seconds}
        if _wants_page(request):
            return _page(request, 503, "Service Unavailable", detail, headers)
        return problem_response(
            503,
            "Service Unavailable",
            detail,
            code="unavailable",
            instance=request.url.path,
            headers=headers,
        )

    app.add_exception_handler(DBAPIError, _out_of_room)
    app.add_exception_handler(OSError, _out_of_room)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # The path has no personal data (ids only); the traceback goes to the operator.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        detail = "an unexpected error occurred; it has been logged"
        if _wants_page(request):
            return _page(request, 500, "Internal Server Error", detail)
        return problem_response(500, "Internal Server Error", detail, code="internal")
