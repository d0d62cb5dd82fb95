"""Signing in and out, the language, and the student's status link: ``/``, ``/login``,
``/logout``, ``/language``, ``/s/{token}``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from web import i18n
from web.pages.common import error_page, page, page_language, render
from web.problems import Problem
from web.runtime import runtime
from web.security import (
    DEVICE_COOKIE,
    LANG_COOKIE,
    PRE_CSRF_COOKIE,
    SESSION_COOKIE,
    authenticate,
    cookie_args,
    csrf_ok,
)
from web.uploads import GuardedRoute
from workflow import auth

router = APIRouter(include_in_schema=False, route_class=GuardedRoute)


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/cases", status_code=303)


def _login_page(
    request: Request,
    *,
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    token = request.cookies.get(PRE_CSRF_COOKIE) or auth.new_secret()
    response = render(request, "login.html", {"error": error, "login_csrf": token}, status=status)
    response.set_cookie(PRE_CSRF_COOKIE, token, **cookie_args(request))
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not csrf_ok(request.cookies.get(PRE_CSRF_COOKIE), csrf):
        raise Problem(
            403, "Forbidden", "the sign-in form has expired; reload the page", code="csrf"
        )
    rt = runtime(request)
    _ = i18n.translator(page_language(request))
    client = request.client.host if request.client else "unknown"
    now = rt.now()
    key = rt.settings.signing_key()
    device = auth.trusted_device(key, request.cookies.get(DEVICE_COOKIE), username, now=now)
    keys = auth.throttle_keys(username, client, device)
    with rt.unit_of_work() as session:
        wait = rt.throttle.attempt(session, keys, now)
        if wait > 0:
            seconds = int(wait) + 1
            return _login_page(
                request,
                error=_("page.login_slow", seconds=seconds),
                status=429,
                headers={"Retry-After": str(seconds)},
            )
        started = None
        matriculation, _at, institution = username.partition("@")
        user = auth.authenticate_user(session, username, password)
        if user is not None:
            started = auth.start_session(session, now=now, user_id=user.id)
        elif institution and "." in institution:
            student = auth.authenticate_student(session, institution, matriculation, password)
            if student is not None:
                started = auth.start_session(session, now=now, student_id=student.id)
        if started is None:
            # The counted attempt stays; commit it and say nothing about which part was wrong.
            failed = True
        else:
            failed = False
            rt.throttle.success(session, keys)
    if failed:
        return _login_page(request, error=_("page.login_failed"), status=401)
    assert started is not None
    response = RedirectResponse("/cases", status_code=303)
    response.set_cookie(SESSION_COOKIE, started.token, **cookie_args(request))
    response.delete_cookie(PRE_CSRF_COOKIE, path="/")
    # This browser is now known for this user name: its next sign-ins have their own
    # allowance (a fresh cookie each time; signed, HttpOnly, Secure, sent to /login only).
    response.set_cookie(
        DEVICE_COOKIE,
        auth.device_cookie(key, username, now=now),
        max_age=int(auth.DEVICE_COOKIE_LIFETIME.total_seconds()),
        **{**cookie_args(request), "path": "/login", "samesite": "strict"},
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    with page(request, form={"csrf": csrf}) as (session, principal, _rt):
        assert principal.session_token is not None
        auth.end_session(session, principal.session_token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/language")
def language(
    request: Request,
    lang: Annotated[str, Form(max_length=5)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    back: Annotated[str, Form(max_length=200)] = "/cases",
) -> Response:
    if lang not in i18n.LANGUAGES:
        raise Problem(422, "Unprocessable Content", "choose en or de", code="invalid")
    target = back if back.startswith("/") and not back.startswith("//") else "/cases"
    rt = runtime(request)
    with rt.unit_of_work() as session:
        principal = authenticate(request, session, rt.now())
        expected = (
            principal.web_session.csrf_token
            if principal and principal.web_session
            else request.cookies.get(PRE_CSRF_COOKIE)
        )
        if not csrf_ok(expected, csrf):
            raise Problem(403, "Forbidden", "the form has expired; reload the page", code="csrf")
        if principal is not None:
            auth.remember_language(session, principal.actor, lang)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, **cookie_args(request))
    return response


@router.get("/s/{token}")
def status_link(request: Request, token: str) -> Response:
    """The landing route of a student's secret link: it opens a session and redirects to a
    URL without the token (so it leaves no trace in history, logs or referrers)."""
    rt = runtime(request)
    with rt.unit_of_work() as session:
        student_id = auth.redeem_status_link(session, token, now=rt.now())
        started = (
            auth.start_session(session, now=rt.now(), student_id=student_id)
            if student_id is not None
            else None
        )
    if started is None:
        return error_page(request, 404, "", "")
    response = RedirectResponse("/cases", status_code=303)
    response.set_cookie(SESSION_COOKIE, started.token, **cookie_args(request))
    return response
