"""What every page shares: the templates and their rendering, the language, a page's unit of
work (``page``: the signed-in principal, CSRF for a POST, the permission check), the
redirect to the sign-in page and the page for a refusal (``error_page``, which the app
hands to the error handler of ``web.problems``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from web import i18n
from web.problems import Problem
from web.runtime import Runtime, runtime
from web.security import LANG_COOKIE, SESSION_COOKIE, Principal, authenticate, csrf_ok
from workflow import Action, require

P = ParamSpec("P")
T = TypeVar("T")

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
TEMPLATES.env.filters.update(i18n.NUMBER_FILTERS)
PAGE_SIZE = 25


class SignIn(Exception):
    """Not signed in (or the session ended): go to the sign-in page."""


def page_language(request: Request, preferred: str | None = None) -> str:
    return i18n.pick_language(
        cookie=request.cookies.get(LANG_COOKIE),
        preferred=preferred,
        accept_language=request.headers.get("accept-language"),
    )


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    principal: Principal | None = None,
    language: str | None = None,
) -> HTMLResponse:
    lang = language or page_language(request, principal.language if principal else None)
    rt = runtime(request)
    zone = rt.settings.zone

    def local(instant: dt.datetime | None, with_time: bool = True) -> str:
        if instant is None:
            return "–"
        value = instant.astimezone(zone)
        if with_time and value.hour == 0 and value.minute == 0:
            # A deadline at 00:00 is the end of the day before ("24:00"), as the law counts.
            value -= dt.timedelta(days=1)
            return value.strftime("%d.%m.%Y") + " 24:00"
        return value.strftime("%d.%m.%Y %H:%M" if with_time else "%d.%m.%Y")

    base = {
        "request": request,
        "lang": lang,
        "t": i18n.translator(lang),
        "states": i18n.states(lang),
        "events": i18n.events(lang),
        "criteria": i18n.CRITERIA[lang],
        "deadlines": i18n.DEADLINES[lang],
        "local": local,
        "kinds": i18n.DOCUMENT_KINDS[lang],
        "todo_map": i18n.student_todo(lang),
        "happened": i18n.timeline(lang),
        "principal": principal,
        "csrf": principal.web_session.csrf_token if principal and principal.web_session else None,
    }
    return TEMPLATES.TemplateResponse(request, template, {**base, **context}, status_code=status)


def error_page(
    request: Request, status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    """The page for a refusal (no database access: it must work when the database fails)."""
    lang = page_language(request)
    t = i18n.translator(lang)
    if status == 404:
        title, detail = t("not_found"), t("not_found_text")
    response = render(
        request, "error.html", {"title": title, "detail": detail}, status=status, language=lang
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@contextmanager
def page(
    request: Request, *, form: Any = None, action: Action | None = None
) -> Iterator[tuple[Session, Principal, Runtime]]:
    """A page's unit of work: the signed-in principal, for a POST the CSRF check, and for a
    page that is not a workflow use case checking for itself, the permission table's
    ``action``."""
    rt = runtime(request)
    with rt.unit_of_work() as session:
        principal = authenticate(request, session, rt.now())
        if principal is None or principal.web_session is None:
            raise SignIn
        if form is not None and not csrf_ok(principal.web_session.csrf_token, form.get("csrf")):
            raise Problem(
                403,
                "Forbidden",
                "the form has expired or was not sent from this "
                "site; reload the page and try again",
                code="csrf",
            )
        if action is not None:
            require(principal.actor, action)
        yield session, principal, rt


def install_sign_in_redirect(app: FastAPI) -> None:
    @app.exception_handler(SignIn)
    async def _sign_in(request: Request, exc: SignIn) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args, **kwargs)
