"""Request bodies are admitted before they are read: every route of the app counts its body
against a limit while it arrives (413 as soon as it passes, or at once when the declared
``Content-Length`` already does), and an upload route (one taking a file) first
authenticates the request and checks the permission its ``@upload`` declaration names, so
a stranger's or a forbidden upload is answered 401/403/404 before a byte of it is read or
spooled to a temporary file.

The limits are settings: ``max_document_bytes``, ``max_transcript_bytes`` and
``max_import_bytes`` for a file (plus ``FORM_OVERHEAD`` for the form around it),
``max_body_bytes`` for every other body. ``install`` wraps the routes once the routers are
included, and refuses to start with an upload route that has no ``@upload`` declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.params import File
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.api.common import unauthorized
from web.files import FORM_OVERHEAD, UPLOADS, Upload
from web.problems import BodyTooLarge, Problem
from web.runtime import Runtime
from web.security import authenticate, csrf_ok
from workflow import Action, queries, require


def takes_upload(route: APIRoute) -> bool:
    """Whether the route's endpoint takes a file (``UploadFile`` / ``File()``)."""
    return any(isinstance(f.field_info, File) for f in route.dependant.body_params)


def install(app: FastAPI, *, sign_in: Callable[[], Exception]) -> None:
    """Wrap every API route and page of ``app``: upload routes are admitted first and
    limited by their kind, every other body by ``max_body_bytes``. ``sign_in`` is the
    exception a page answers a visitor who is not signed in with."""
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        rule = UPLOADS.get(route.endpoint)
        if takes_upload(route) and rule is None:
            raise RuntimeError(
                f"{route.path} takes a file but declares no limit; decorate "
                f"{route.endpoint.__name__} with web.files.upload(...)"
            )
        route.app = _guarded(
            route.app, rule, page=not route.path.startswith("/api/"), sign_in=sign_in
        )


def _guarded(
    inner: ASGIApp, rule: Upload | None, *, page: bool, sign_in: Callable[[], Exception]
) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        rt: Runtime = scope["app"].state.runtime
        request = Request(scope)  # headers, cookies and path only: no body
        if rule is not None:
            await run_in_threadpool(_admit, request, rule, rt, page, sign_in)
            limit = rule.file_bytes(rt.settings) + FORM_OVERHEAD
        else:
            limit = rt.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(limit)
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await inner(scope, counted, send)

    return app


def _admit(
    request: Request, rule: Upload, rt: Runtime, page: bool, sign_in: Callable[[], Exception]
) -> None:
    """Who sends the upload, and whether they may: the same checks the route makes again
    inside its unit of work, made before its body is read."""
    with rt.read_only() as session:
        principal = authenticate(request, session, rt.now())
        if principal is None or (page and principal.web_session is None):
            raise sign_in() if page else unauthorized()
        if (
            not page
            and principal.web_session is not None
            and not csrf_ok(principal.web_session.csrf_token, request.headers.get("x-csrf-token"))
        ):
            raise Problem(
                403, "Forbidden", "the X-CSRF-Token header is missing or wrong", code="csrf"
            )
        if rule.action is not None:
            require(principal.actor, rule.action)
        if rule.case_param is not None:
            raw: Any = request.path_params.get(rule.case_param, "")
            if str(raw).isdigit() and 1 <= int(raw) < 2**31:
                # Not found unless the actor may see the case, then forbidden unless they
                # may attach documents of some kind (the kind is in the body).
                queries.case_status(session, int(raw), actor=principal.actor, now=rt.now())
                require(principal.actor, Action.ATTACH_DOCUMENT)
