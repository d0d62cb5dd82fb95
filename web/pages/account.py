"""The signed-in person's account and password: ``/account``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from web import i18n
from web.pages.common import error_page, page, page_language, password_problem, render
from web.security import SESSION_COOKIE, Principal, cookie_args
from web.uploads import GuardedRoute
from workflow import ValidationFailed, auth, queries

router = APIRouter(include_in_schema=False, route_class=GuardedRoute)


def _account_page(
    request: Request,
    s: Session,
    p: Principal,
    *,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    assert p.actor.id is not None
    student = queries.student(s, p.actor.id, actor=p.actor)
    inst = queries.own_institution(s, actor=p.actor)
    assert inst is not None  # a student's actor carries their institution
    return render(
        request,
        "student_account.html",
        {
            "enabled": inst.student_passwords,
            "has_password": bool(student.password_hash),
            "login_name": f"{student.matriculation_number}@{inst.code}",
            "error": error,
            "notice": notice,
        },
        status=status,
        principal=p,
    )


@router.get("/account")
def account(request: Request) -> Response:
    """A student's sign-in password: the user name to use, and a form to set the password."""
    with page(request) as (s, p, _rt):
        if not p.is_student:
            return error_page(request, 404, "", "")
        _ = i18n.translator(page_language(request, p.language))
        saved = request.query_params.get("saved") == "1"
        return _account_page(request, s, p, notice=_("page.password_saved") if saved else None)


@router.post("/account/password")
def account_password(
    request: Request,
    password: Annotated[str, Form(max_length=1024)],
    password2: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Set the signed-in student's password. Any student session may: it was opened by a
    status link (which is the way to reset a forgotten password) or by the password itself.
    Every other session of the student ends; this browser gets a new one."""
    from workflow import set_student_password

    with page(request, form={"csrf": csrf}) as (s, p, rt):
        if not p.is_student:
            return error_page(request, 404, "", "")
        _ = i18n.translator(page_language(request, p.language))
        problem = password_problem(_, password, password2)
        if problem:
            return _account_page(request, s, p, error=problem, status=422)
        assert p.actor.id is not None
        try:
            set_student_password(s, p.actor.id, password)
        except ValidationFailed:  # the institution does not enable student passwords
            return _account_page(request, s, p, error=_("page.account_disabled"), status=403)
        started = auth.start_session(s, now=rt.now(), student_id=p.actor.id)
    response = RedirectResponse("/account?saved=1", status_code=303)
    response.set_cookie(SESSION_COOKIE, started.token, **cookie_args(request))
    return response
