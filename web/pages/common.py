"""What every page shares: the templates and their rendering, the language, a page's unit of
work (``page``: the signed-in principal, CSRF for a POST, the permission check), the
redirect to the sign-in page and the page for a refusal (``error_page``, which the app
hands to the error handler of ``web.problems``).
"""

from __future__ import annotations

import dataclasses
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
from web.problems import Problem, SignIn
from web.runtime import Runtime, runtime
from web.security import LANG_COOKIE, SESSION_COOKIE, Principal, authenticate, csrf_ok
from workflow import (
    DIFFERENCE_THRESHOLD,
    MIN_PASSWORD_LENGTH,
    Action,
    allowed,
    criterion_words,
    format_date,
    format_datetime,
    format_decimal,
    institution_zone,
    require,
)

P = ParamSpec("P")
T = TypeVar("T")

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
TEMPLATES.env.filters.update(i18n.NUMBER_FILTERS)
PAGE_SIZE = 25


def password_problem(_: Callable[[str], str], password: str, repeated: str) -> str | None:
    """What is wrong with a password chosen in a form (too short, the two entries differ), in
    the page's words; None if nothing. The workflow checks the length again when it stores it."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return _("page.password_short")
    if password != repeated:
        return _("page.password_mismatch")
    return None


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
    zone = (principal.zone if principal else None) or rt.settings.zone

    def local(instant: dt.datetime | str | None, with_time: bool = True) -> str:
        """An instant as the page's language writes it in the zone of the principal's
        institution
        ("07.12.2026 14:30", "7 December 2026 14:30"; a deadline at 00:00 is 24:00 of the day
        before); an ISO string (a decision's ``decided_at``) is read first."""
        if instant is None or instant == "":
            return "–"
        if isinstance(instant, str):
            try:
                parsed = dt.datetime.fromisoformat(instant)
            except ValueError:
                return instant
            instant = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        value = instant.astimezone(zone)
        if with_time:
            return format_datetime(value, lang)
        return format_date(value.date(), lang)

    # The words come with the render's own context, never from a shared environment, so two
    # requests in different languages rendered at the same time cannot mix
    # (tests/web/test_web_pages.py).
    _ = i18n.translator(lang)
    base = {
        "request": request,
        "lang": lang,
        "_": _,
        "gettext": _,
        "flag": format_decimal(DIFFERENCE_THRESHOLD, lang),
        "words": i18n.words(_),
        "states": i18n.states(lang),
        "events": i18n.events(lang),
        "criteria": criterion_words(_),
        "deadlines": i18n.deadlines(_),
        "local": local,
        "kinds": i18n.document_kinds(_),
        "todo_map": i18n.student_todo(lang),
        "happened": i18n.timeline(lang),
        "principal": principal,
        # What the page offers is what the one permission table allows ("may('assign_examiner')").
        "may": lambda action: principal is not None and allowed(principal.actor, Action(action)),
        "csrf": principal.web_session.csrf_token if principal and principal.web_session else None,
    }
    return TEMPLATES.TemplateResponse(request, template, {**base, **context}, status_code=status)


def error_page(
    request: Request, status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    """The page for a refusal (no database access: it must work when the database fails)."""
    lang = page_language(request)
    _ = i18n.translator(lang)
    if status == 404:
        title, detail = _("page.not_found"), _("page.not_found_text")
    elif status == 413:
        title, detail = _("page.too_large"), _("page.too_large_text")
    elif status == 503:
        title, detail = _("page.unavailable"), _("page.unavailable_text")
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
        principal = dataclasses.replace(
            principal,
            zone=institution_zone(session, principal.actor.institution_id, rt.settings),
        )
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
