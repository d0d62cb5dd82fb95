"""Cohort decisions and inconsistent precedents: ``/cohorts``, ``/precedents``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from web.api.common import call, idempotent
from web.api.schemas import CohortIn, CohortOut, CohortPreviewOut, CohortResultOut, InconsistentPair
from web.uploads import GuardedRoute
from workflow import Action, Conflict, NotFound

router = APIRouter(route_class=GuardedRoute)


@router.get("/cohorts", response_model=list[CohortOut], tags=["cohorts"])
def cohorts(request: Request) -> Any:
    """Course offerings and target modules with cases in review waiting for your decision."""
    from workflow import waiting_cohorts

    with call(request) as (s, p, _rt):
        return waiting_cohorts(s, actor=p.actor)


@router.get("/cohorts/preview", response_model=CohortPreviewOut, tags=["cohorts"])
def cohort_preview(
    request: Request,
    offering_id: Annotated[int, Query(ge=1, le=2**31 - 1)],
    module: Annotated[str, Query(min_length=1, max_length=60)],
) -> Any:
    """The cases a cohort decision would decide, each with its student's grade converted by
    the modified Bavarian formula and, where the grading tables allow it, by percentiles
    (flagged as `differs` when the two lie too far apart; see that field)."""
    from workflow import methods, preview

    with call(request) as (s, p, rt):
        cases = preview(
            s,
            offering_id=offering_id,
            module_code=module,
            actor=p.actor,
            rounding=rt.settings.grade_rounding,
        )
        if not cases:
            raise NotFound(
                f"no case of course offering {offering_id} with target module "
                f"{module} is waiting for your decision"
            )
        return {
            "offering_id": offering_id,
            "module": module,
            "cases": cases,
            "methods": methods(cases),
        }


@router.post("/cohorts/decide", response_model=CohortResultOut, tags=["cohorts"])
def cohort_decide(request: Request, body: CohortIn) -> Response:
    """Decide every case in review of one course offering and target module at once (all or
    none, one audit event per case); the grade, if not given, is each student's own,
    converted by the method `data.conversion` names (the modified Bavarian formula unless
    it says `percentile`)."""
    from workflow import decide, waiting_cases

    with call(request, write=True) as (s, p, rt):

        def run() -> tuple[int, Any]:
            if body.expected_cases is not None:
                waiting = waiting_cases(
                    s, offering_id=body.offering_id, module_code=body.module, actor=p.actor
                )
                if sorted(set(body.expected_cases)) != waiting:
                    raise Conflict(
                        f"the cases waiting for this cohort decision changed: now "
                        f"{', '.join(map(str, waiting)) or 'none'}; review them "
                        "again"
                    )
            fired = decide(
                s,
                offering_id=body.offering_id,
                module_code=body.module,
                event=body.event,
                data=dict(body.data),
                actor=p.actor,
                now=rt.now(),
                channel="api",
                settings=rt.settings,
            )
            return 200, {
                "decided": len(fired),
                "cases": [
                    {
                        "case_id": f.case_id,
                        "seq": f.seq,
                        "to_state": f.to_state,
                        "grade": f.data.get("grade"),
                    }
                    for f in fired
                ],
            }

        return idempotent(request, s, p, body.model_dump(), run)


@router.get("/precedents/inconsistent", response_model=list[InconsistentPair], tags=["precedents"])
def inconsistent_precedents(request: Request) -> Any:
    """Pairs (partner course, home module, regulation version) that your office's valid
    precedents decided differently."""
    from workflow import inconsistent

    with call(request, action=Action.CHECK_PRECEDENTS) as (s, p, rt):
        return inconsistent(s, actor=p.actor, now=rt.now())
