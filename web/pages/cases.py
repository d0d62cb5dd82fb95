"""The case list and the case page with its events, documents, status link and ELMO export:
``/cases``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from config.errors import RecogError
from config.procedure import get_procedure
from web import files, i18n
from web.actions import CRITERIA, DECISIONS, STRUCTURED_REASONS, form_data, open_events
from web.files import download_response, read_upload, safe_filename, upload
from web.pages.common import PAGE_SIZE, in_thread, page, page_language, render
from web.params import Id
from web.problems import Problem, SignIn, status_of
from web.runtime import Runtime
from web.security import Principal
from web.uploads import GuardedRoute
from workflow import (
    COHORT_EVENTS,
    GERMAN_STEPS,
    Action,
    allowed,
    attach_document,
    auth,
    case_side_by_side,
    document_kinds,
    fire,
    inconsistent,
    queries,
    record_result_date,
    require,
    waiting_cases,
    waiting_cohorts,
)

router = APIRouter(include_in_schema=False, route_class=GuardedRoute)


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
        "q": " ".join((q.get("q") or "")[:120].split()) or None,
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
            text=f["q"],
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
                "inconsistent": inconsistent(s, actor=p.actor, now=now)
                if allowed(p.actor, Action.CHECK_PRECEDENTS)
                else [],
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
    examiner_id = detail["examiner_id"]
    history = queries.history(s, case_id, actor=p.actor)
    events = open_events(p.actor, detail, examiner_id, now)
    home = queries.own_institution(s, actor=p.actor)
    modules: list[Any] = []
    examiners: list[Any] = []
    if not p.is_student:
        modules = queries.office_modules(s, actor=p.actor)
        # Those who may review the case (and the one assigned), as assigning checks it.
        examiners = queries.office_examiners(s, actor=p.actor, case_id=case_id, active_only=True)
    template = "student_case.html" if p.is_student else "case.html"
    conversion = None
    cohort_offers: list[dict[str, Any]] = []
    if allowed(p.actor, Action.SEE_INTERNALS):
        conversion = case_side_by_side(
            s, case_id, actor=p.actor, rounding=rt.settings.grade_rounding
        )
        if (
            allowed(p.actor, Action.DECIDE_COHORT)
            and detail["state"] in get_procedure().sources_of(*COHORT_EVENTS)
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
            "document_kinds": document_kinds(p.actor),
            "form": form or {},
            "office": home,
            "student_view": p.is_student,
            "may_record_date": allowed(p.actor, Action.RECORD_RESULT_DATE),
        },
        principal=p,
        status=status,
    )


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: Id) -> Response:
    with page(request) as (s, p, rt):
        _ = i18n.translator(page_language(request, p.language))
        notice = {
            "sent": _("page.link_sent"),
            "unchanged": _("page.link_not_sent"),
            "revoked": _("page.links_revoked"),
        }.get(request.query_params.get("notice", ""))
        return _case_page(request, s, p, rt, case_id, notice=notice)


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
    return await in_thread(_case_event, request, case_id, form)


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


@router.post("/cases/{case_id}/result-date")
def case_result_date(
    request: Request,
    case_id: Id,
    csrf: Annotated[str, Form(max_length=200)] = "",
    date: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """The office records the date of a partner's result that its transcript left unknown."""
    try:
        with page(request, form={"csrf": csrf}) as (s, p, rt):
            record_result_date(s, case_id, date, actor=p.actor, now=rt.now(), channel="web")
    except (SignIn, Problem):
        raise
    except RecogError as exc:
        return _refused(request, case_id, exc)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.post("/cases/{case_id}/documents")
@upload("documents", case_param="case_id")
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
            content, media_type = read_upload(file, rt.settings.max_document_bytes)
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
                max_bytes=rt.settings.max_document_bytes,
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
                s, status["id"], link_base=rt.settings.link_base, now=rt.now()
            )
            notice = "sent" if queued else "unchanged"
    return RedirectResponse(f"/cases/{case_id}?notice={notice}", status_code=303)


@router.get("/cases/{case_id}/export/elmo")
def case_export_elmo(request: Request, case_id: Id) -> Response:
    with page(request) as (s, p, rt):
        return files.elmo_export(
            s, case_id, actor=p.actor, now=rt.now(), settings=rt.settings, store=rt.store
        )
