"""An office user's invitation: ``/invite/{token}`` (the e-mailed one-time link) and
``/invite`` (the form to set the password).

Like a student's status link, the link's secret does not stay in the address bar: the first
request moves it into a cookie scoped to ``/invite`` and redirects to ``/invite``. Setting the
password uses the invitation up (``workflow.accounts.accept_invitation``) and signs the user in.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from web import i18n
from web.pages.common import page_language, password_problem, render
from web.problems import Problem
from web.runtime import runtime
from web.security import PRE_CSRF_COOKIE, SESSION_COOKIE, cookie_args, csrf_ok
from web.uploads import GuardedRoute
from workflow import ValidationFailed, accounts, auth

router = APIRouter(include_in_schema=False, route_class=GuardedRoute)

INVITE_COOKIE = "recog_invite"


def _closed(request: Request, state: accounts.InvitationState, language: str | None) -> Response:
    """The page of a link that cannot be used: used, expired, or not valid."""
    lang = page_language(request, language)
    _ = i18n.translator(lang)
    detail = {
        accounts.InvitationState.USED: _("page.invite_used"),
        accounts.InvitationState.EXPIRED: _("page.invite_expired"),
    }.get(state, _("page.invite_unknown"))
    status = 404 if state is accounts.InvitationState.UNKNOWN else 410
    response = render(
        request, "invite.html", {"closed": True, "detail": detail}, status=status, language=lang
    )
    response.delete_cookie(INVITE_COOKIE, path="/invite")
    return response


def _form(
    request: Request,
    found: accounts.Invitation,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    token = request.cookies.get(PRE_CSRF_COOKIE) or auth.new_secret()
    response = render(
        request,
        "invite.html",
        {"closed": False, "username": found.username, "error": error, "invite_csrf": token},
        status=status,
        language=page_language(request, found.language),
    )
    response.set_cookie(PRE_CSRF_COOKIE, token, **cookie_args(request))
    return response


@router.get("/invite/{token}")
def invitation_link(request: Request, token: str) -> Response:
    rt = runtime(request)
    with rt.read_only() as session:
        found = accounts.look_up_invitation(session, token, now=rt.now())
    if found.state is not accounts.InvitationState.OPEN:
        return _closed(request, found.state, found.language)
    response = RedirectResponse("/invite", status_code=303)
    response.set_cookie(INVITE_COOKIE, token, **{**cookie_args(request), "path": "/invite"})
    return response


@router.get("/invite")
def invitation_form(request: Request) -> Response:
    rt = runtime(request)
    with rt.read_only() as session:
        found = accounts.look_up_invitation(
            session, request.cookies.get(INVITE_COOKIE, ""), now=rt.now()
        )
    if found.state is not accounts.InvitationState.OPEN:
        return _closed(request, found.state, found.language)
    return _form(request, found)


@router.post("/invite")
def invitation_accept(
    request: Request,
    password: Annotated[str, Form(max_length=1024)],
    password2: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not csrf_ok(request.cookies.get(PRE_CSRF_COOKIE), csrf):
        raise Problem(403, "Forbidden", "the form has expired; reload the page", code="csrf")
    rt = runtime(request)
    token = request.cookies.get(INVITE_COOKIE, "")
    with rt.unit_of_work() as session:
        now = rt.now()
        found = accounts.look_up_invitation(session, token, now=now)
        if found.state is not accounts.InvitationState.OPEN:
            return _closed(request, found.state, found.language)
        _ = i18n.translator(page_language(request, found.language))
        problem = password_problem(_, password, password2)
        if problem:
            return _form(request, found, error=problem, status=422)
        try:
            user = accounts.accept_invitation(session, token, password, now=now)
        except accounts.InvitationClosed as closed:
            return _closed(request, closed.state, found.language)
        except ValidationFailed:
            return _form(request, found, error=_("page.password_short"), status=422)
        started = auth.start_session(session, now=now, user_id=user.id)
    response = RedirectResponse("/cases", status_code=303)
    response.set_cookie(SESSION_COOKIE, started.token, **cookie_args(request))
    response.delete_cookie(INVITE_COOKIE, path="/invite")
    response.delete_cookie(PRE_CSRF_COOKIE, path="/")
    return response
