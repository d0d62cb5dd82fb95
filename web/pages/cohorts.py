"""Deciding a cohort of like cases at once: ``/cohorts``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from config.errors import RecogError
from web import i18n
from web.actions import CRITERIA, form_data
from web.pages.common import in_thread, page, page_language, render
from web.problems import Problem, SignIn, status_of
from web.runtime import Runtime
from web.security import Principal
from web.uploads import GuardedRoute
from workflow import (
    COHORT_EVENTS,
    CONVERTING_EVENTS,
    GERMAN_STEPS,
    Conflict,
    ValidationFailed,
    decide,
    preview,
    queries,
    waiting_cases,
    waiting_cohorts,
)
from workflow import methods as cohort_methods

router = APIRouter(include_in_schema=False, route_class=GuardedRoute)


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
    cases = preview(
        s,
        offering_id=offering,
        module_code=module,
        actor=p.actor,
        rounding=rt.settings.grade_rounding,
    )
    # The course is named only to whom a case of it waits for (else the page shows none).
    course, partner = queries.course(s, offering, actor=p.actor) if cases else (None, None)
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
            "cohort_events": COHORT_EVENTS,
            "converting_events": CONVERTING_EVENTS,
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


def _chooser(
    request: Request, s: Session, p: Principal, *, wrong: bool, status: int
) -> HTMLResponse:
    """The form to choose a cohort: the (course offering, target module) groups waiting
    for this examiner, and the two fields; ``wrong`` when the address named no valid one."""
    cohorts = waiting_cohorts(s, actor=p.actor)
    return render(
        request,
        "cohort_choose.html",
        {
            "cohorts": cohorts,
            "offerings": list({c["offering_id"]: c for c in cohorts}.values()),
            "modules": sorted({c["module"] for c in cohorts}),
            "wrong": wrong,
            "given_offering": str(request.query_params.get("offering") or "")[:12],
            "given_module": str(request.query_params.get("module") or "")[:60],
        },
        principal=p,
        status=status,
    )


@router.get("/cohorts")
def cohort(request: Request) -> Response:
    with page(request) as (s, p, rt):
        query = request.query_params
        try:
            offering, module = _cohort_params(query)
        except ValidationFailed:
            # No cohort named (or not a valid one): the form to choose one, not an error page.
            named = bool(query.get("offering") or query.get("module"))
            return _chooser(request, s, p, wrong=named, status=422 if named else 200)
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
    return await in_thread(_cohort_decide, request, form)


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
                _ = i18n.translator(page_language(request, p.language))
                raise Conflict(_("page.cohort_changed"))
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
