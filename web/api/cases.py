"""Cases: the list and counts, opening one, its detail, status, events, history, examiner,
targets and the ELMO export of its decision: ``/cases``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from web.api.common import call, case_version, fired_out, idempotent
from web.api.schemas import (
    CaseDetail,
    CaseIn,
    CaseStatus,
    EventIn,
    ExaminerIn,
    Fired,
    Page,
    ResultDateIn,
    TargetsIn,
)
from web.files import elmo_export
from web.params import Id, IfMatch, Limit, Offset
from web.problems import unauthorized
from web.runtime import runtime
from web.security import Principal, bearer
from web.uploads import GuardedRoute
from workflow import (
    Action,
    NotFound,
    assign_examiner,
    fire,
    open_case,
    queries,
    record_result_date,
    require,
    set_targets,
)

router = APIRouter(route_class=GuardedRoute)


@router.get("/cases", response_model=Page, tags=["cases"])
def cases(
    request: Request,
    limit: Limit = 50,
    offset: Offset = 0,
    state: Annotated[str | None, Query(max_length=24)] = None,
    partner: Annotated[str | None, Query(max_length=120)] = None,
    course: Annotated[str | None, Query(max_length=60)] = None,
    examiner: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="the examiner's user id")
    ] = None,
    overdue: bool = False,
    q: Annotated[
        str | None,
        Query(
            max_length=120,
            description="free text: every word in the student's name or matriculation "
            "number, the course's code or title, or the case number (any case)",
        ),
    ] = None,
    sort: Literal["id", "state", "due_at", "updated_at", "course", "partner"] = "id",
    order: Literal["asc", "desc"] = "asc",
) -> dict[str, Any]:
    """The cases you may see, filtered, sorted and paginated."""
    with call(request) as (s, p, rt):
        items, total = queries.search_cases(
            s,
            actor=p.actor,
            now=rt.now(),
            state=state,
            partner=partner,
            course=course,
            examiner_id=examiner,
            overdue=overdue,
            text=q,
            sort=sort,
            descending=order == "desc",
            limit=limit,
            offset=offset,
        )
        return {"items": jsonable_encoder(items), "total": total, "limit": limit, "offset": offset}


@router.get("/cases/counts", response_model=dict[str, int], tags=["cases"])
def case_counts(request: Request) -> dict[str, int]:
    """How many cases you may see are in each state, and how many are overdue."""
    with call(request) as (s, p, rt):
        counts = queries.count_by_state(s, actor=p.actor)
        counts["overdue"] = queries.count_overdue(s, actor=p.actor, now=rt.now())
        return counts


@router.post("/cases", response_model=Fired, status_code=201, tags=["cases"])
def create_case(request: Request, body: CaseIn) -> Response:
    """Open a case for a student and a partner course offering."""
    with call(request, write=True) as (s, p, rt):

        def run() -> tuple[int, Any]:
            fired = open_case(
                s,
                student_id=body.student_id,
                offering_id=body.offering_id,
                actor=p.actor,
                now=rt.now(),
                target_module_ids=body.target_module_ids,
                channel="api",
                settings=rt.settings,
            )
            return 201, fired_out(fired)

        return idempotent(request, s, p, body.model_dump(), run)


@router.get("/cases/{case_id}", tags=["cases"], response_model=CaseDetail)
def case(request: Request, case_id: Id) -> Response:
    """One case, with its documents, the events open to you and its precedents."""
    with call(request) as (s, p, rt):
        detail = queries.case_detail(s, case_id, actor=p.actor, now=rt.now())
        return JSONResponse(jsonable_encoder(detail), headers={"ETag": f'"{detail["version"]}"'})


@router.get("/cases/{case_id}/status", response_model=CaseStatus, tags=["cases"])
async def case_status(request: Request, case_id: Id) -> Any:
    """The short status of a case: what a campus system polls."""
    rt = runtime(request)
    token = bearer(request)
    pool = getattr(request.state, "hot_reads", None)
    if token is None or pool is None:
        return Response(
            await run_in_threadpool(_case_status, request, case_id), media_type="application/json"
        )
    # An integration's poll on PostgreSQL: the token lookup and the scoped status in one
    # statement, on the event loop's own connection pool (autocommit), without a thread hop.
    async with pool.connection() as conn:
        found = await queries.case_status_for_token_async(
            conn, rt.engine.dialect, token, case_id, now=rt.now()
        )
    if found is None:
        raise unauthorized()
    if found.status is None:
        raise NotFound(f"case {case_id} not found")
    return Response(CaseStatus(**found.status).model_dump_json(), media_type="application/json")


def _case_status(request: Request, case_id: int) -> str:
    with call(request) as (s, p, rt):
        status = queries.case_status(s, case_id, actor=p.actor, now=rt.now())
    return CaseStatus(**status).model_dump_json()


@router.post("/cases/{case_id}/events", response_model=Fired, status_code=201, tags=["cases"])
def fire_event(request: Request, case_id: Id, body: EventIn, if_match: IfMatch = None) -> Response:
    """Fire an event on a case (If-Match: the version you saw; stale: 412)."""
    expected = case_version(if_match)
    with call(request, write=True) as (s, p, rt):

        def run() -> tuple[int, Any]:
            fired = fire(
                s,
                case_id,
                body.event,
                actor=p.actor,
                now=rt.now(),
                data=body.data,
                channel="api",
                expected_version=expected,
                settings=rt.settings,
            )
            return 201, fired_out(fired)

        return idempotent(request, s, p, {**body.model_dump(), "if_match": expected}, run)


@router.get("/cases/{case_id}/history", response_model=list[dict[str, Any]], tags=["cases"])
def case_history(request: Request, case_id: Id) -> Any:
    """The audit trail of a case, oldest first."""
    with call(request) as (s, p, _rt):
        return jsonable_encoder(queries.history(s, case_id, actor=p.actor))


@router.put("/cases/{case_id}/examiner", response_model=Fired, tags=["cases"])
def put_examiner(request: Request, case_id: Id, body: ExaminerIn, if_match: IfMatch = None) -> Any:
    expected = case_version(if_match)
    with call(request, write=True) as (s, p, rt):
        _expect(s, p, case_id, expected, rt.now(), action=Action.ASSIGN_EXAMINER)
        return fired_out(assign_examiner(s, case_id, body.username, actor=p.actor, now=rt.now()))


@router.put("/cases/{case_id}/result-date", response_model=Fired, tags=["cases"])
def put_result_date(
    request: Request, case_id: Id, body: ResultDateIn, if_match: IfMatch = None
) -> Any:
    """Record the date of the partner's result that its transcript left unknown."""
    expected = case_version(if_match)
    with call(request, write=True) as (s, p, rt):
        _expect(s, p, case_id, expected, rt.now(), action=Action.RECORD_RESULT_DATE)
        return fired_out(record_result_date(s, case_id, body.date, actor=p.actor, now=rt.now()))


@router.put("/cases/{case_id}/targets", response_model=Fired, tags=["cases"])
def put_targets(request: Request, case_id: Id, body: TargetsIn, if_match: IfMatch = None) -> Any:
    expected = case_version(if_match)
    with call(request, write=True) as (s, p, rt):
        _expect(s, p, case_id, expected, rt.now(), action=Action.SET_TARGETS)
        return fired_out(set_targets(s, case_id, body.modules, actor=p.actor, now=rt.now()))


def _expect(
    session: Session,
    p: Principal,
    case_id: Id,
    expected: int | None,
    now: dt.datetime,
    *,
    action: Action,
) -> None:
    """The case must be visible (else 404, before anything else is said about it), the
    action allowed (else 403, before a stale version is reported), and the version the one
    the caller saw."""
    from workflow import StaleVersion

    current = queries.case_status(session, case_id, actor=p.actor, now=now)
    require(p.actor, action)
    if expected is not None and current["version"] != expected:
        raise StaleVersion(
            f"case {case_id}: you saw version {expected}, but it is now at "
            f"version {current['version']} ({current['state']}); reload it"
        )


@router.get(
    "/cases/{case_id}/export/elmo",
    tags=["cases"],
    response_class=Response,
    responses={
        200: {
            "content": {"application/xml": {}},
            "description": "The decision as ELMO 2.0 (resultOfRecognition)",
        }
    },
)
def export_elmo(request: Request, case_id: Id) -> Response:
    """The case's decision as an ELMO 2.0 document, for the student and partner systems
    (409 while the case is undecided)."""
    with call(request) as (s, p, rt):
        return elmo_export(
            s, case_id, actor=p.actor, now=rt.now(), settings=rt.settings, store=rt.store
        )
