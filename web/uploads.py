"""Request bodies are admitted before they are read. Every route of the API and the pages
is a ``GuardedRoute``: it counts its body against a limit while the body arrives (413 as
soon as it passes, at once when the declared ``Content-Length`` already does), and an
upload route (one taking a file, declared with ``web.files.upload``) first authenticates
the request and checks the permission its declaration names, so that a stranger's or a
forbidden upload is answered 401 (a page: the sign-in page) / 403 / 404 before a byte of it
is read or spooled to a temporary file.

The limits are settings: ``max_document_bytes``, ``max_transcript_bytes`` and
``max_import_bytes`` for a file (plus ``FORM_OVERHEAD`` for the form around it),
``max_body_bytes`` for every other body. ``install`` refuses to start an app with a route
that is not guarded, or an upload route without its declaration.

This module holds no route and imports no module of ``web`` that holds one.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.params import File
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute
from starlette.types import Message

from web.files import FORM_OVERHEAD, UPLOADS, Upload
from web.problems import BodyTooLarge, Problem, SignIn, unauthorized, unavailable
from web.runtime import Runtime, runtime
from web.security import authenticate, csrf_ok
from workflow import Action, queries, require


def takes_upload(route: APIRoute) -> bool:
    """Whether the route's endpoint takes a file (``UploadFile`` / ``File()``)."""
    return any(isinstance(f.field_info, File) for f in route.dependant.body_params)


class GuardedRoute(APIRoute):
    """An API route or page whose body is admitted and limited (see the module)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        endpoint = self.endpoint

        async def guarded(request: Request) -> Response:
            rt = runtime(request)
            rule = UPLOADS.get(endpoint)
            if rule is not None:
                await run_in_threadpool(_admit, request, rule, rt)
                limit = rule.file_bytes(rt.settings) + FORM_OVERHEAD
            else:
                limit = rt.settings.max_body_bytes
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise BodyTooLarge(limit)
            receive, received = request.receive, 0

            async def counted() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise BodyTooLarge(limit)
                return message

            try:
                return await handler(Request(request.scope, counted))
            except StarletteHTTPException as exc:
                # FastAPI answers 400 for whatever failed while it read the body; a disk
                # that filled up under the spooled upload is the server's trouble (503).
                if exc.status_code == 400 and exc.__cause__ and unavailable(exc.__cause__):
                    raise exc.__cause__ from None
                raise

        return guarded


def routes(app: FastAPI) -> Iterator[BaseRoute]:
    """Every route of ``app``, those of included routers too."""
    for context in iter_route_contexts(app.routes):
        yield context.original_route


def install(app: FastAPI) -> None:
    """Check that every route of ``app`` that takes a body is guarded and every upload
    route declares its limit; a route that is not stops the start, naming it."""
    for route in routes(app):
        if not isinstance(route, APIRoute) or not (route.methods or set()) - {"GET", "HEAD"}:
            continue
        if not isinstance(route, GuardedRoute):
            raise RuntimeError(
                f"{route.path} is not guarded; create its router with "
                "APIRouter(route_class=web.uploads.GuardedRoute)"
            )
        if takes_upload(route) and route.endpoint not in UPLOADS:
            raise RuntimeError(
                f"{route.path} takes a file but declares no limit; decorate "
                f"{route.endpoint.__name__} with web.files.upload(...)"
            )


def _admit(request: Request, rule: Upload, rt: Runtime) -> None:
    """Who sends the upload, and whether they may: the checks the route makes again inside
    its unit of work, made before its body is read."""
    page = not request.url.path.startswith("/api/")
    with rt.read_only() as session:
        principal = authenticate(request, session, rt.now())
        if principal is None or (page and principal.web_session is None):
            raise SignIn if page else unauthorized()
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
            raw = str(request.path_params.get(rule.case_param, ""))
            if raw.isdigit() and 1 <= int(raw) < 2**31:
                # Not found unless the actor may see the case, then forbidden unless they
                # may attach documents of some kind (which kind is in the body).
                queries.case_status(session, int(raw), actor=principal.actor, now=rt.now())
                require(principal.actor, Action.ATTACH_DOCUMENT)
