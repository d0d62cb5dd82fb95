"""The server-rendered pages: sign-in, the office dashboard and case page, the student status
pages. No JavaScript; every change is a form POST carrying the session's CSRF token, answered
with a redirect (post/redirect/get) or, when refused, the page again with the reason.

Offices and students share the routes: ``/cases`` and ``/cases/{id}`` show what the signed-in
person may see, through the same ``case_scope`` as everything else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.errors import RecogError
from config.procedure import get_procedure
from models import Institution, Student, User
from web import i18n, recognition
from web.actions import (
    CRITERIA,
    DECISIONS,
    STRUCTURED_REASONS,
    form_data,
    open_events,
)
from web.api import Id, download_response, read_upload, safe_filename
from web.problems import Problem, status_of
from web.runtime import Runtime, runtime
from web.security import (
    LANG_COOKIE,
    PRE_CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    authenticate,
    cookie_args,
    csrf_ok,
)
from workflow import (
    CONVERTING_EVENTS,
    DOCUMENT_KINDS,
    GERMAN_STEPS,
    Action,
    Conflict,
    ValidationFailed,
    allowed,
    attach_document,
    auth,
    case_side_by_side,
    decide,
    fire,
    import_transcript,
    inconsistent,
    match_by_hand,
    preview,
    queries,
    require,
    waiting_cases,
    waiting_cohorts,
)
from workflow import methods as cohort_methods

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
TEMPLATES.env.filters.update(i18n.NUMBER_FILTERS)
PAGE_SIZE = 25
router = APIRouter(include_in_schema=False)


class SignIn(Exception):
    """Not signed in (or the session ended): go to the sign-in page."""


def _language(request: Request, preferred: str | None = None) -> str:
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
    lang = language or _language(request, principal.language if principal else None)
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
    lang = _language(request)
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


def install_sign_in_redirect(app: Any) -> None:
    @app.exception_handler(SignIn)
    async def _sign_in(request: Request, exc: SignIn) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


# --- sign-in, sign-out, language, status links -----------------------------------------------


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
    t = i18n.translator(_language(request))
    client = request.client.host if request.client else "unknown"
    keys = auth.throttle_keys(username, client)
    with rt.unit_of_work() as session:
        now = rt.now()
        wait = rt.throttle.attempt(session, keys, now)
        if wait > 0:
            seconds = int(wait) + 1
            return _login_page(
                request,
                error=t("login_slow", seconds=seconds),
                status=429,
                headers={"Retry-After": str(seconds)},
            )
        started = None
        matriculation, _, institution = username.partition("@")
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
        return _login_page(request, error=t("login_failed"), status=401)
    assert started is not None
    response = RedirectResponse("/cases", status_code=303)
    response.set_cookie(SESSION_COOKIE, started.token, **cookie_args(request))
    response.delete_cookie(PRE_CSRF_COOKIE, path="/")
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
        if principal is not None and principal.actor.id is not None:
            model = Student if principal.is_student else User
            row = session.get(model, principal.actor.id)
            if row is not None:
                row.preferred_language = lang
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


# --- cases -------------------------------------------------------------------------------------


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    state = q.get("state") or None
    proc = get_procedure()
    return {
        "state": state if state in proc.states else None,
        "partner": (q.get("partner") or "")[:120] or None,
        "course": (q.get("course") or "")[:60] or None,
        "examiner": int(q["examiner"])
        if q.get("examiner", "").isdigit() and len(q["examiner"]) < 10
        else None,
        "overdue": q.get("overdue") == "1",
        "sort": q.get("sort") if q.get("sort") in queries.SORTS else "id",
        "order": "desc" if q.get("order") == "desc" else "asc",
    }


@router.get("/cases")
def case_list(request: Request) -> Response:
    with page(request) as (s, p, rt):
        now = rt.now()
        if p.is_student:
            items, _ = queries.search_cases(
                s, actor=p.actor, now=now, sort="updated_at", descending=True, limit=100
            )
            cases = [queries.case_detail(s, c["id"], actor=p.actor, now=now) for c in items]
            if len(cases) == 1:
                return RedirectResponse(f"/cases/{cases[0]['id']}", status_code=303)
            return render(request, "student_home.html", {"cases": cases}, principal=p)
        f = _filters(request)
        try:
            page_no = max(1, min(10_000, int(request.query_params.get("page", "1"))))
        except ValueError:
            page_no = 1
        items, total = queries.search_cases(
            s,
            actor=p.actor,
            now=now,
            state=f["state"],
            partner=f["partner"],
            course=f["course"],
            examiner_id=f["examiner"],
            overdue=f["overdue"],
            sort=f["sort"],
            descending=f["order"] == "desc",
            limit=PAGE_SIZE,
            offset=(page_no - 1) * PAGE_SIZE,
        )
        counts = queries.count_by_state(s, actor=p.actor)
        overdue = queries.count_overdue(s, actor=p.actor, now=now)
        partners = queries.partner_codes(s)
        examiners = queries.office_examiners(s, actor=p.actor)
        pages = max(1, -(-total // PAGE_SIZE))
        query = {k: ("1" if v is True else v) for k, v in f.items() if v and k != "order"}
        if f["order"] == "desc":
            query["order"] = "desc"
        return render(
            request,
            "dashboard.html",
            {
                "items": items,
                "total": total,
                "counts": counts,
                "overdue": overdue,
                "filters": f,
                "partners": partners,
                "examiners": examiners,
                "page_no": page_no,
                "pages": pages,
                "query": query,
                "all_states": list(get_procedure().states),
                "inconsistent": inconsistent(s, now=now, institution_id=p.actor.institution_id),
                "cohorts": [c for c in waiting_cohorts(s, actor=p.actor) if c["waiting"] > 1]
                if allowed(p.actor, Action.DECIDE_COHORT)
                else [],
            },
            principal=p,
        )


def _case_page(
    request: Request,
    s: Session,
    p: Principal,
    rt: Runtime,
    case_id: Id,
    *,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
    form: dict[str, Any] | None = None,
) -> HTMLResponse:
    now = rt.now()
    detail = queries.case_detail(s, case_id, actor=p.actor, now=now)
    examiner_id = (
        s.execute(select(User.id).where(User.username == detail["examiner"])).scalar()
        if detail["examiner"]
        else None
    )
    history = queries.history(s, case_id, actor=p.actor)
    events = open_events(p.actor, detail, examiner_id, now)
    home = s.get(Institution, p.actor.institution_id) if p.actor.institution_id else None
    modules: list[Any] = []
    examiners: list[Any] = []
    if not p.is_student:
        modules = queries.office_modules(s, actor=p.actor)
        # Unassigned: those who hold the case's programme first (they can review it).
        examiners = queries.office_examiners(
            s,
            actor=p.actor,
            case_id=case_id if detail.get("examiner") is None else None,
            active_only=True,
        )
    template = "student_case.html" if p.is_student else "case.html"
    conversion = None
    cohort_offers: list[dict[str, Any]] = []
    if allowed(p.actor, Action.SEE_INTERNALS):
        conversion = case_side_by_side(
            s, case_id, actor=p.actor, rounding=rt.settings.grade_rounding
        )
        if (
            allowed(p.actor, Action.DECIDE_COHORT)
            and detail["state"] == "in_review"
            and examiner_id == p.actor.id
        ):
            for target in detail["targets"]:
                waiting = waiting_cases(
                    s, offering_id=detail["course"]["id"], module_code=target["code"], actor=p.actor
                )
                if len(waiting) > 1:
                    cohort_offers.append({"module": target["code"], "n": len(waiting)})
    return render(
        request,
        template,
        {
            "case": detail,
            "history": history,
            "open_events": events,
            "error": error,
            "notice": notice,
            "modules": modules,
            "examiners": examiners,
            "targets": {t["code"] for t in detail["targets"]},
            "suggested": conversion["suggested"] if conversion else None,
            "steps": GERMAN_STEPS,
            "conversion": conversion,
            "cohort_offers": cohort_offers,
            "criteria_keys": CRITERIA,
            "structured": STRUCTURED_REASONS,
            "decisions": DECISIONS,
            "document_kinds": DOCUMENT_KINDS if not p.is_student else ("evidence",),
            "form": form or {},
            "office": home,
            "student_view": p.is_student,
        },
        principal=p,
        status=status,
    )


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: Id) -> Response:
    with page(request) as (s, p, rt):
        notice = {
            "sent": "link_sent",
            "unchanged": "link_not_sent",
            "revoked": "links_revoked",
        }.get(request.query_params.get("notice", ""))
        t = i18n.translator(_language(request, p.language))
        return _case_page(request, s, p, rt, case_id, notice=t(notice) if notice else None)


def _refused(
    request: Request, case_id: Id, exc: RecogError, form: dict[str, Any] | None = None
) -> Response:
    """The case page again, with the reason a change was refused (nothing was changed)."""
    status, _, _ = status_of(exc)
    if status == 404:
        raise exc
    with page(request) as (s, p, rt):
        return _case_page(request, s, p, rt, case_id, error=exc.message, status=status, form=form)


@router.post("/cases/{case_id}/events")
async def case_event(request: Request, case_id: Id) -> Response:
    form = await request.form()
    return await _in_thread(_case_event, request, case_id, form)


async def _in_thread(fn: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


def _case_event(request: Request, case_id: Id, form: Any) -> Response:
    event = str(form.get("event") or "")
    data = form_data(event, form)
    data.pop("confirm", None)
    raw_version = str(form.get("version") or "")
    expected = int(raw_version) if raw_version.isdigit() else None
    try:
        with page(request, form=form) as (s, p, rt):
            fire(
                s,
                case_id,
                event,
                actor=p.actor,
                now=rt.now(),
                data=data,
                channel="web",
                expected_version=expected,
                settings=rt.settings,
            )
    except (SignIn, Problem):
        raise
    except RecogError as exc:
        return _refused(request, case_id, exc, form={"event": event, **data})
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.post("/cases/{case_id}/documents")
def case_document(
    request: Request,
    case_id: Id,
    file: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form(max_length=200)] = "",
    kind: Annotated[str, Form(max_length=20)] = "evidence",
) -> Response:
    try:
        with page(request, form={"csrf": csrf}) as (s, p, rt):
            queries.case_status(s, case_id, actor=p.actor, now=rt.now())  # 404 first
            content, media_type = read_upload(file)
            attach_document(
                s,
                case_id,
                content=content,
                filename=safe_filename(file.filename),
                media_type=media_type,
                kind=kind,
                store=rt.store,
                actor=p.actor,
                now=rt.now(),
                channel="web",
            )
    except (SignIn, Problem):
        raise
    except RecogError as exc:
        return _refused(request, case_id, exc)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.get("/cases/{case_id}/documents/{document_id}")
def case_document_download(request: Request, case_id: Id, document_id: Id) -> Response:
    with page(request) as (s, p, rt):
        return download_response(rt, queries.document(s, case_id, document_id, actor=p.actor))


@router.post("/cases/{case_id}/status-link")
def case_status_link(
    request: Request,
    case_id: Id,
    csrf: Annotated[str, Form(max_length=200)] = "",
    action: Annotated[str, Form(max_length=10)] = "send",
) -> Response:
    """Office: e-mail the student a new link, or revoke all links. Student: e-mail me one."""
    with page(request, form={"csrf": csrf}) as (s, p, rt):
        status = queries.case_status(s, case_id, actor=p.actor, now=rt.now())
        if action == "revoke":
            require(p.actor, Action.REVOKE_STATUS_LINKS)
            student_id = queries.case_detail(s, case_id, actor=p.actor, now=rt.now())["student"][
                "id"
            ]
            auth.revoke_status_links(s, student_id, now=rt.now())
            notice = "revoked"
        else:
            require(p.actor, Action.SEND_STATUS_LINK)
            queued = auth.queue_status_link(
                s, status["id"], base_url=str(request.base_url), now=rt.now()
            )
            notice = "sent" if queued else "unchanged"
    return RedirectResponse(f"/cases/{case_id}?notice={notice}", status_code=303)


@router.get("/cases/{case_id}/export/elmo")
def case_export_elmo(request: Request, case_id: Id) -> Response:
    with page(request) as (s, p, rt):
        return recognition.elmo_export(
            s, case_id, actor=p.actor, now=rt.now(), settings=rt.settings, store=rt.store
        )


# --- transcripts -------------------------------------------------------------------------------


def _transcripts_page(
    request: Request, s: Session, p: Principal, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    q = request.query_params
    sha = q.get("file", "")
    report = (
        queries.imported_file(s, sha, actor=p.actor)
        if len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)
        else []
    )
    waiting = queries.pending_results(s, actor=p.actor)
    for row in waiting:
        row["cases"] = queries.cases_waiting_for(
            s, actor=p.actor, partner=row["partner"], course=row["course"]
        )
    counts = {
        k: sum(1 for r in report if r["status"] == k)
        for k in ("matched", "unmatched", "ambiguous", "resolved")
    }
    matched = q.get("matched", "")
    return render(
        request,
        "transcripts.html",
        {
            "report": report,
            "report_counts": counts,
            "again": q.get("new") == "0",
            "pending": waiting,
            "error": error,
            "matched": int(matched) if matched.isdigit() and len(matched) < 10 else None,
            "max_mb": recognition.MAX_TRANSCRIPT_BYTES // (1024 * 1024),
        },
        principal=p,
        status=status,
    )


@router.get("/transcripts")
def transcripts(request: Request) -> Response:
    with page(request, action=Action.SEE_PENDING_RESULTS) as (s, p, _rt):
        return _transcripts_page(request, s, p)


def _transcripts_refused(request: Request, exc: Exception) -> Response:
    """The transcripts page again, saying why the upload or the match was refused."""
    if isinstance(exc, Problem):
        status, message = exc.status, exc.detail
    else:
        assert isinstance(exc, RecogError)
        status, message = status_of(exc)[0], exc.message
    with page(request, action=Action.SEE_PENDING_RESULTS) as (s, p, _rt):
        return _transcripts_page(request, s, p, error=message, status=status)


@router.post("/transcripts")
def transcript_upload(
    request: Request,
    file: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        with page(request, form={"csrf": csrf}, action=Action.IMPORT_TRANSCRIPT) as (s, p, rt):
            content = recognition.read_transcript(file)
            report = import_transcript(
                s,
                content,
                filename=safe_filename(file.filename),
                store=rt.store,
                now=rt.now(),
                home_institution_id=p.actor.institution_id,
                channel="web",
            )
    except SignIn:
        raise
    except Problem as exc:
        if exc.code not in ("media_type", "too_large"):
            raise
        return _transcripts_refused(request, exc)
    except RecogError as exc:
        return _transcripts_refused(request, exc)
    sha = recognition.report_json(report, content)["sha256"]
    new = len(report.results) - report.count("skipped")
    return RedirectResponse(f"/transcripts?file={sha}&new={new}#report", status_code=303)


@router.post("/transcripts/pending/{result_id}/match")
def transcript_match(
    request: Request,
    result_id: Id,
    csrf: Annotated[str, Form(max_length=200)] = "",
    case_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    try:
        with page(request, form={"csrf": csrf}) as (s, p, rt):
            target = case_id.strip().lstrip("#")
            if not target.isdigit() or not 1 <= int(target) < 2**31:
                raise ValidationFailed("give the number of the case the result belongs to")
            match_by_hand(
                s,
                result_id,
                int(target),
                store=rt.store,
                actor=p.actor,
                now=rt.now(),
                channel="web",
            )
    except (SignIn, Problem):
        raise
    except RecogError as exc:
        return _transcripts_refused(request, exc)
    return RedirectResponse(f"/transcripts?matched={int(target)}", status_code=303)


# --- cohort decisions --------------------------------------------------------------------------


def _cohort_params(source: Any) -> tuple[int, str]:
    raw = str(source.get("offering") or "")
    module = str(source.get("module") or "").strip()[:60]
    if not raw.isdigit() or not 1 <= int(raw) < 2**31 or not module:
        raise ValidationFailed("a cohort is named by its course offering and target module")
    return int(raw), module


def _case_list(case_ids: list[int], most: int = 10) -> str:
    """``#3, #5, #8``; past ``most`` cases, the first ones and how many more."""
    shown = ", ".join(f"#{case_id}" for case_id in case_ids[:most])
    return shown + (f" (+{len(case_ids) - most})" if len(case_ids) > most else "")


def _cohort_page(
    request: Request,
    s: Session,
    p: Principal,
    rt: Runtime,
    offering: int,
    module: str,
    *,
    error: str | None = None,
    status: int = 200,
    decided: int | None = None,
    chosen: str | None = None,
) -> HTMLResponse:
    from models import Offering

    cases = preview(
        s,
        offering_id=offering,
        module_code=module,
        actor=p.actor,
        rounding=rt.settings.grade_rounding,
    )
    course = s.get(Offering, offering) if cases else None
    partner = s.get(Institution, course.institution_id) if course else None
    allowed = cohort_methods(cases)
    # The grading tables the percentile conversions used, each named once (as on a case page).
    used: dict[tuple[str, int], dict[str, Any]] = {}
    for c in cases:
        if c["percentile"] is not None and c["tables"]:
            for side in ("partner", "home"):
                table = c["tables"][side]
                used.setdefault((side, table["id"]), table)
    return render(
        request,
        "cohort.html",
        {
            "cases": cases,
            "offering": offering,
            "module": module,
            "course": course,
            "partner": partner,
            "error": error,
            "decided": decided,
            "steps": GERMAN_STEPS,
            "blocked": next((c for c in cases if c["error"]), None),
            "ids": ",".join(str(c["case_id"]) for c in cases),
            "criteria_keys": CRITERIA,
            "methods": allowed,
            "chosen": chosen if chosen in allowed else "bavarian",
            "no_percentile": _case_list([c["case_id"] for c in cases if c["percentile"] is None]),
            "no_tables": any(c["percentile_missing"] for c in cases),
            "differing": sum(1 for c in cases if c["differs"]),
            "tables_used": [
                {"side": side, **table}
                for (side, _), table in sorted(
                    used.items(), key=lambda item: (item[0][0] != "partner", item[0][1])
                )
            ],
        },
        principal=p,
        status=status,
    )


@router.get("/cohorts")
def cohort(request: Request) -> Response:
    with page(request) as (s, p, rt):
        offering, module = _cohort_params(request.query_params)
        done = request.query_params.get("decided", "")
        return _cohort_page(
            request,
            s,
            p,
            rt,
            offering,
            module,
            decided=int(done) if done.isdigit() and len(done) < 7 else None,
        )


@router.post("/cohorts/decide")
async def cohort_decide(request: Request) -> Response:
    form = await request.form()
    return await _in_thread(_cohort_decide, request, form)


def _cohort_decide(request: Request, form: Any) -> Response:
    offering, module = _cohort_params(form)
    event = str(form.get("event") or "")
    data = form_data(event, form)
    for key in ("offering", "module", "cases", "confirm"):
        data.pop(key, None)
    if event in CONVERTING_EVENTS:
        data["modules"] = [module]
    expected = sorted(
        {
            int(c)
            for c in str(form.get("cases") or "").split(",")
            if c.strip().isdigit() and len(c.strip()) < 10
        }
    )
    try:
        with page(request, form=form) as (s, p, rt):
            if form.get("confirm") != "1":
                raise ValidationFailed("confirm that you have checked the listed cases")
            waiting = waiting_cases(s, offering_id=offering, module_code=module, actor=p.actor)
            if waiting != expected:
                t = i18n.translator(_language(request, p.language))
                raise Conflict(t("cohort_changed"))
            fired = decide(
                s,
                offering_id=offering,
                module_code=module,
                event=event,
                data=data,
                actor=p.actor,
                now=rt.now(),
                channel="web",
                settings=rt.settings,
            )
    except (SignIn, Problem):
        raise
    except RecogError as exc:
        status = status_of(exc)[0]
        with page(request) as (s, p, rt):
            return _cohort_page(
                request,
                s,
                p,
                rt,
                offering,
                module,
                error=exc.message,
                status=status,
                chosen=str(form.get("conversion") or ""),
            )
    return RedirectResponse(
        f"/cohorts?offering={offering}&module={quote(module, safe='')}&decided={len(fired)}",
        status_code=303,
    )


# --- a student's own password (where the institution enables it) ----------------------------


def _account_page(
    request: Request,
    s: Session,
    p: Principal,
    *,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    student = s.get(Student, p.actor.id)
    assert student is not None
    inst = s.get(Institution, student.institution_id)
    assert inst is not None
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
        t = i18n.translator(_language(request, p.language))
        saved = request.query_params.get("saved") == "1"
        return _account_page(request, s, p, notice=t("password_saved") if saved else None)


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
    from workflow import MIN_PASSWORD_LENGTH, set_student_password

    with page(request, form={"csrf": csrf}) as (s, p, rt):
        if not p.is_student:
            return error_page(request, 404, "", "")
        t = i18n.translator(_language(request, p.language))
        problem = (
            t("password_short")
            if len(password) < MIN_PASSWORD_LENGTH
            else t("password_mismatch")
            if password != password2
            else None
        )
        if problem:
            return _account_page(request, s, p, error=problem, status=422)
        assert p.actor.id is not None
        try:
            set_student_password(s, p.actor.id, password)
        except ValidationFailed:  # the institution does not enable student passwords
            return _account_page(request, s, p, error=t("account_disabled"), status=403)
        started = auth.start_session(s, now=rt.now(), student_id=p.actor.id)
    response = RedirectResponse("/account?saved=1", status_code=303)
    response.set_cookie(SESSION_COOKIE, started.token, **cookie_args(request))
    return response
