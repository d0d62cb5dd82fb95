"""The REST API under ``/api/v1``: reference data, students, cases, documents, users and
tokens. Authentication by ``Authorization: Bearer`` (API tokens) or the session cookie (then
unsafe methods need the ``X-CSRF-Token`` header). Every case read goes through
``workflow.cases.queries`` and thus ``case_scope``; every change through ``workflow``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import (
    IdempotencyKey,
    Institution,
    Offering,
    User,
)
from web.files import (
    MEDIA_TYPES,
    as_file,
    download_response,
    elmo_export,
    import_upload,
    read_transcript,
    read_upload,
    safe_filename,
)
from web.params import Id, IfMatch, Limit, Offset
from web.problems import PROBLEM, Problem
from web.recognition import report_json
from web.runtime import Runtime, runtime
from web.security import Principal, authenticate, bearer, csrf_ok
from workflow import (
    DIFFERENCE_THRESHOLD,
    DOCUMENT_KINDS,
    Action,
    Conflict,
    NotFound,
    ValidationFailed,
    assign_examiner,
    attach_document,
    auth,
    catalog,
    fire,
    open_case,
    queries,
    require,
    set_targets,
)

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {PROBLEM: {"schema": {"type": "object"}}}}
    for code, text in [
        (401, "Not signed in"),
        (403, "Forbidden"),
        (404, "Not found"),
        (409, "Conflict"),
        (412, "Stale version"),
        (413, "Too large"),
        (415, "Unsupported media type"),
        (422, "Unprocessable"),
        (429, "Too many requests"),
    ]
}

router = APIRouter(prefix="/api/v1", responses=_PROBLEMS)


# --- the unit of work of an API request -------------------------------------------------------


@contextmanager
def call(
    request: Request, *, action: Action | None = None, write: bool = False
) -> Iterator[tuple[Session, Principal, Runtime]]:
    """Authenticate, check (cookie sessions) the CSRF header and, for a route that is not a
    workflow use case checking for itself, the permission table's ``action``, inside the
    request's one transaction."""
    rt = runtime(request)
    with rt.unit_of_work() if write else rt.read_only() as session:
        principal = authenticate(request, session, rt.now())
        if principal is None:
            raise _unauthorized()
        if (
            write
            and principal.web_session is not None
            and not csrf_ok(principal.web_session.csrf_token, request.headers.get("x-csrf-token"))
        ):
            raise Problem(
                403, "Forbidden", "the X-CSRF-Token header is missing or wrong", code="csrf"
            )
        if action is not None:
            require(principal.actor, action)
        yield session, principal, rt


def _unauthorized() -> Problem:
    return Problem(
        401,
        "Unauthorized",
        "sign in, or send an API token as 'Authorization: Bearer TOKEN'",
        code="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="recog"'},
    )


def _version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit() or len(raw) > 9:
        # Matches no version the case can have: the precondition fails (RFC 9110 13.1.1).
        raise Problem(
            412,
            "Precondition Failed",
            "If-Match must be the case version you "
            'saw, e.g. "7" (the ETag of GET /api/v1/cases/ID)',
            code="if_match",
        )
    return int(raw)


def idempotent(
    request: Request,
    session: Session,
    principal: Principal,
    body: Any,
    run: Callable[[], tuple[int, Any]],
    headers: dict[str, str] | None = None,
) -> Response:
    """Run ``run`` once per ``Idempotency-Key``: the same key with the same body replays the
    stored response; with another body it is refused. The key row is written first, so a
    concurrent duplicate waits for the first to commit and then replays it."""
    key = request.headers.get("idempotency-key")
    if key is None:
        status, payload = run()
        return JSONResponse(jsonable_encoder(payload), status_code=status, headers=headers)
    if not 1 <= len(key) <= 200:
        raise ValidationFailed("the Idempotency-Key must have 1 to 200 characters")
    canonical = json.dumps(
        [request.method, request.url.path, jsonable_encoder(body)], sort_keys=True, default=str
    )
    request_hash = hashlib.sha256(canonical.encode()).hexdigest()
    ident = (principal.key, key)
    row = session.get(IdempotencyKey, ident)
    if row is None:
        try:
            with session.begin_nested():
                session.add(
                    IdempotencyKey(
                        principal=principal.key,
                        key=key,
                        method=request.method,
                        path=request.url.path,
                        request_hash=request_hash,
                        status_code=0,
                        response_body="",
                        created_at=runtime(request).now(),
                    )
                )
        except IntegrityError:
            row = session.get(IdempotencyKey, ident, populate_existing=True)
    if row is not None:
        if row.request_hash != request_hash:
            raise ValidationFailed(
                "this Idempotency-Key was used for a different request; "
                "use a new key for a new request"
            )
        if row.status_code == 0:
            raise Problem(
                409,
                "Conflict",
                "a request with this Idempotency-Key is still running; retry in a moment",
                code="idempotency_in_progress",
            )
        return Response(
            row.response_body,
            status_code=row.status_code,
            media_type="application/json",
            headers={**(headers or {}), "Idempotent-Replayed": "true"},
        )
    status, payload = run()
    encoded = json.dumps(jsonable_encoder(payload), ensure_ascii=False)
    stored = session.get(IdempotencyKey, ident)
    assert stored is not None
    stored.status_code, stored.response_body = status, encoded
    return Response(encoded, status_code=status, media_type="application/json", headers=headers)


# --- models ------------------------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class Me(BaseModel):
    role: str
    id: int | None
    institution_id: int | None
    name: str
    language: str | None


class InstitutionOut(BaseModel):
    id: int
    code: str
    name: str
    country: str
    kind: str


class ModuleOut(BaseModel):
    id: int
    code: str
    title: str
    ects: Decimal
    regulation_version: str


class ProgrammeOut(BaseModel):
    id: int
    code: str
    title: str
    degree: str | None
    modules: list[ModuleOut]


class OfferingOut(BaseModel):
    id: int
    partner: str
    code: str
    term: str
    title: str
    ects: Decimal
    language: str
    eqf_level: int
    learning_outcomes: str
    assessment_type: str
    participation_mode: str
    quality_assurance: str | None
    start_date: dt.date
    end_date: dt.date
    exam_date: dt.date | None
    grading_scheme: str
    status: str
    isced_code: str | None = Field(default=None, description="ISCED-F field of education.")


class StudentIn(Strict):
    matriculation_number: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=300)
    email: EmailStr
    preferred_language: Literal["de", "en"] = "de"


class StudentOut(BaseModel):
    id: int
    matriculation_number: str
    name: str
    email: str
    preferred_language: str


class CaseIn(Strict):
    student_id: Id = Field(ge=1, le=2**31 - 1)
    offering_id: int = Field(ge=1, le=2**31 - 1)
    target_module_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        default_factory=list, max_length=20
    )


class EventIn(Strict):
    event: str = Field(min_length=1, max_length=40)
    data: dict[str, Any] = Field(default_factory=dict)


class ExaminerIn(Strict):
    username: str = Field(min_length=1, max_length=80)


class TargetsIn(Strict):
    modules: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        min_length=1, max_length=20
    )


class Fired(BaseModel):
    case_id: Id
    seq: int
    event: str
    from_state: str | None
    to_state: str
    at: dt.datetime
    due_at: dt.datetime | None
    due_kind: str | None
    version: int


class CaseStatus(BaseModel):
    id: int
    state: str
    version: int
    due_at: dt.datetime | None
    due_kind: str | None
    overdue_days: int
    appeal_ends_at: dt.datetime | None
    updated_at: dt.datetime


class UserIn(Strict):
    username: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._@-]+$")
    role: Literal["clerk", "examiner", "board", "admin"]
    display_name: str | None = Field(default=None, max_length=300)
    email: EmailStr | None = None
    programmes: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        default_factory=list, max_length=50
    )
    language: Literal["de", "en"] = "de"
    password: str | None = Field(default=None, min_length=12, max_length=1024)


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    programmes: list[str]


class TokenIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    expires_in_days: int | None = Field(default=None, ge=1, le=730)


class TokenOut(BaseModel):
    id: int
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class NewToken(BaseModel):
    id: int
    name: str
    token: str


class Queued(BaseModel):
    queued: bool
    detail: str


class Revoked(BaseModel):
    revoked: int


class ImportOut(BaseModel):
    created: int
    updated: int


class DocumentOut(BaseModel):
    id: int
    kind: str
    filename: str
    media_type: str
    size: int
    sha256: str
    uploaded_at: dt.datetime
    uploaded_by_role: str


class CaseStudent(BaseModel):
    id: int
    name: str
    matriculation_number: str
    email: str
    language: str


class CaseCourse(BaseModel):
    id: int
    partner: str | None
    partner_name: str | None
    code: str
    title: str
    term: str
    ects: str
    eqf_level: int
    language: str
    exam_date: dt.date | None
    grading_scheme: str


class CaseModule(BaseModel):
    code: str
    title: str
    ects: str


class CaseDeadline(BaseModel):
    kind: str | None
    due_at: dt.datetime | None
    overdue_days: int


class DecisionClock(BaseModel):
    due_at: dt.datetime | None
    paused_seconds_left: int | None


class CaseDocument(BaseModel):
    id: int
    kind: str
    filename: str
    size: int
    sha256: str
    uploaded_at: dt.datetime


class NextEvent(BaseModel):
    event: str
    actors: list[str]


class PrecedentOut(BaseModel):
    """A past decision for the same partner course and home module."""

    case: int = Field(description="The case decided (it may be one you cannot open).")
    module: str = Field(description="The home module's code.")
    outcome: Literal["credited", "not_credited"]
    grade: str | None = Field(description="The converted grade, for a credited module.")
    decided_at: dt.datetime
    regulation_version: str = Field(description="The module's examination regulations then.")


class ExpiredPrecedentOut(PrecedentOut):
    why: str = Field(
        description="Why it no longer counts: older than the validity period, "
        "or the module's regulations changed since."
    )


class PrecedentsOut(BaseModel):
    valid: list[PrecedentOut] = Field(description="Precedents that still count, newest first.")
    expired: list[ExpiredPrecedentOut]
    suggestion: dict[str, PrecedentOut] = Field(
        description="Per target module code, the decision the newest valid precedent suggests."
    )


class CaseDetail(BaseModel):
    """A case with everything the case page shows."""

    id: int
    state: str
    state_label: str
    final: bool
    version: int
    student: CaseStudent
    course: CaseCourse
    targets: list[CaseModule]
    examiner: str | None = Field(description="The assigned examiner (null for students).")
    deadline: CaseDeadline
    decision_clock: DecisionClock
    appeal_ends_at: dt.datetime | None
    result: dict[str, Any] | None = Field(description="The partner result as recorded.")
    decision: dict[str, Any] | None = Field(
        description="The decision with its modules, ECTS, grade, conversion and reasons."
    )
    documents: list[CaseDocument]
    next_events: list[NextEvent]
    precedents: PrecedentsOut | None = Field(
        description="The office's past decisions for this case's partner course and target "
        "modules (valid and expired) and the suggestion they make; null for "
        "students (the office's internal memory)."
    )
    opened_at: dt.datetime
    updated_at: dt.datetime


class TranscriptResultOut(BaseModel):
    line: int = Field(description="The line of the result in the file.")
    course: str | None
    title: str | None
    grade: str | None
    status: Literal["matched", "unmatched", "ambiguous", "skipped"]
    case: int | None = Field(description="The case it landed on, when matched.")
    note: str | None = Field(description="The events fired, or why it waits for a clerk.")


class TranscriptReportOut(BaseModel):
    file: str
    format: str = Field(description="ELMO 1.7, ELMO 2.0 or EWP.")
    sha256: str
    counts: dict[str, int]
    results: list[TranscriptResultOut]


class PendingResultOut(BaseModel):
    id: int
    file: str
    file_sha256: str
    line: int
    status: Literal["unmatched", "ambiguous"]
    learner: str
    birth_date: str | None
    partner: str | None
    course: str | None
    title: str | None
    grade: str | None
    result_status: str | None
    date: str | None
    case_id: int | None
    candidates: list[int] = Field(description="The cases it could belong to (ambiguous).")
    note: str | None
    imported_at: dt.datetime


class MatchIn(Strict):
    case_id: int = Field(ge=1, le=2**31 - 1)


class MatchOut(BaseModel):
    result_id: int
    case_id: int
    events: list[str]


class CohortCase(BaseModel):
    case_id: int
    version: int
    student: str
    matriculation_number: str
    grade: str | None = Field(description="The partner grade as printed.")
    scheme: str | None
    converted: str | None = Field(
        description="The grade converted by the office's rules (the modified Bavarian formula)."
    )
    error: str | None = Field(description="Why the grade cannot be converted.")
    percentile: str | None = Field(
        description="The grade converted by percentiles with the "
        "case's grading tables, as GET /cases/{case_id}/conversions "
        "converts it."
    )
    percentile_error: str | None = Field(
        description="Why the grade cannot be converted by "
        "percentiles (e.g. which grading table is not "
        "stored)."
    )
    band: dict[str, str] | None = Field(
        description="The partner grade's percentile band: lower, upper and midpoint (percent)."
    )
    difference: str | None = Field(description="How far apart the two conversions are.")
    differs: bool = Field(
        description=f"True when the two conversions differ by {DIFFERENCE_THRESHOLD} or more."
    )
    partner_table_id: int | None = Field(description="The partner grading table used.")
    home_table_id: int | None = Field(description="The home grade distribution used.")


class CohortOut(BaseModel):
    offering_id: int
    partner: str
    course: str
    title: str
    term: str
    module: str
    waiting: int


class CohortPreviewOut(BaseModel):
    offering_id: int
    module: str
    cases: list[CohortCase]
    methods: list[Literal["bavarian", "percentile"]] = Field(
        description="The conversions the whole cohort may be decided by (data.conversion of "
        "POST /cohorts/decide): percentile only when every case can be converted "
        "by percentiles."
    )


class CohortIn(Strict):
    offering_id: int = Field(ge=1, le=2**31 - 1)
    module: str = Field(min_length=1, max_length=60, description="The target module's code.")
    # workflow.decisions.cohort.COHORT_EVENTS: a partial recognition is decided case by case.
    event: Literal["recognize", "reject"]
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="The event data for every case; without `grade`, "
        "each student's own partner grade is converted. `conversion` chooses the method for "
        "the whole cohort, as on a single case: `bavarian` (the default) or `percentile` "
        "(each case's own grading tables; if one case cannot be converted so, nothing is "
        "decided, 422 naming the cases). The conversion itself is always computed by Recog "
        "and stored with each decision.",
        json_schema_extra={
            "properties": {
                "conversion": {
                    "type": "string",
                    "enum": ["bavarian", "percentile"],
                    "default": "bavarian",
                    "description": "The method of grade conversion for every case.",
                }
            }
        },
    )
    expected_cases: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] | None = Field(
        default=None,
        max_length=10_000,
        description="The case ids you reviewed (GET /cohorts/preview); if the waiting cases "
        "are not exactly these, nothing is decided (409).",
    )


class CohortDecided(BaseModel):
    case_id: int
    seq: int
    to_state: str
    grade: str | None


class CohortResultOut(BaseModel):
    decided: int
    cases: list[CohortDecided]


class InconsistentDecision(BaseModel):
    case: int
    outcome: Literal["credited", "not_credited"]
    grade: str | None


class InconsistentPair(BaseModel):
    partner: str
    course: str
    module: str
    regulation_version: str
    decisions: list[InconsistentDecision]


def _fired(f: Any) -> dict[str, Any]:
    return {
        "case_id": f.case_id,
        "seq": f.seq,
        "event": f.event,
        "from_state": f.from_state,
        "to_state": f.to_state,
        "at": f.at,
        "due_at": f.due_at,
        "due_kind": f.due_kind,
        "version": f.seq,
    }


# --- who am I, reference data ------------------------------------------------------------------


@router.get("/me", response_model=Me, tags=["auth"])
def me(request: Request) -> dict[str, Any]:
    with call(request) as (_, p, _rt):
        return {
            "role": p.actor.role.value,
            "id": p.actor.id,
            "institution_id": p.actor.institution_id,
            "name": p.name,
            "language": p.language,
        }


@router.get("/institutions", response_model=list[InstitutionOut], tags=["reference"])
def institutions(request: Request) -> list[Any]:
    with call(request) as (s, _, _rt):
        return [
            InstitutionOut.model_validate(i, from_attributes=True)
            for i in s.scalars(select(Institution).order_by(Institution.code))
        ]


@router.get("/programmes", response_model=list[ProgrammeOut], tags=["reference"])
def programmes(request: Request) -> list[Any]:
    """The programmes and modules of your own institution."""
    with call(request) as (s, p, _rt):
        progs = queries.office_programmes(s, actor=p.actor)
        return [
            ProgrammeOut(
                id=g.id,
                code=g.code,
                title=g.title,
                degree=g.degree,
                modules=[
                    ModuleOut.model_validate(m, from_attributes=True)
                    for m in sorted(g.modules, key=lambda m: m.code)
                ],
            )
            for g in progs
        ]


@router.get("/catalogue", response_model=Page, tags=["reference"])
def catalogue(
    request: Request,
    limit: Limit = 50,
    offset: Offset = 0,
    partner: Annotated[str | None, Query(max_length=120)] = None,
    term: Annotated[str | None, Query(max_length=20)] = None,
) -> dict[str, Any]:
    """The partner course catalogue (offerings), paginated."""
    with call(request) as (s, _, _rt):
        query = select(Offering, Institution.code.label("partner")).join(
            Institution, Institution.id == Offering.institution_id
        )
        if partner:
            query = query.where(Institution.code == partner)
        if term:
            query = query.where(Offering.term == term)
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.execute(
            query.order_by(Institution.code, Offering.term, Offering.code)
            .limit(limit)
            .offset(offset)
        ).all()
        items = [
            OfferingOut.model_validate(
                {
                    **{c.key: getattr(r.Offering, c.key) for c in Offering.__table__.columns},
                    "partner": r.partner,
                }
            ).model_dump(mode="json")
            for r in rows
        ]
        return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post("/catalogue/import", response_model=ImportOut, tags=["reference"])
def catalogue_import(request: Request, file: Annotated[UploadFile, File()]) -> Response:
    """Import partner course offerings (CSV or JSON, all rows checked first)."""
    content, _name, suffix = import_upload(file, "catalogue", "catalogue.csv")
    with call(request, action=Action.IMPORT_CATALOGUE, write=True) as (s, p, _rt):

        def run() -> tuple[int, Any]:
            with as_file(content, "catalogue", suffix) as path:
                summary = catalog.import_catalogue(s, path)
            return 200, {"created": summary.created, "updated": summary.updated}

        body = {"sha256": hashlib.sha256(content).hexdigest(), "suffix": suffix}
        return idempotent(request, s, p, body, run)


@router.get("/students", response_model=Page, tags=["students"])
def students(request: Request, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    with call(request) as (s, p, _rt):
        found, total = queries.office_students(s, actor=p.actor, limit=limit, offset=offset)
        items = [StudentOut.model_validate(st, from_attributes=True).model_dump() for st in found]
        return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post("/students", response_model=StudentOut, status_code=201, tags=["students"])
def create_student(request: Request, body: StudentIn) -> Response:
    """Register a student (or return the one with this matriculation number)."""
    with call(request, action=Action.REGISTER_STUDENT, write=True) as (s, p, _rt):
        assert p.actor.institution_id is not None

        def run() -> tuple[int, Any]:
            st = catalog.find_or_create_student(s, p.actor.institution_id or 0, **body.model_dump())
            return 201, StudentOut.model_validate(st, from_attributes=True).model_dump()

        return idempotent(request, s, p, body.model_dump(), run)


@router.get("/students/{student_id}", response_model=StudentOut, tags=["students"])
def student(request: Request, student_id: Id) -> Any:
    with call(request) as (s, p, _rt):
        return StudentOut.model_validate(
            queries.student(s, student_id, actor=p.actor), from_attributes=True
        )


@router.post(
    "/students/{student_id}/status-link", response_model=Queued, status_code=202, tags=["students"]
)
def send_status_link(request: Request, student_id: Id) -> Any:
    """E-mail the student a fresh secret link to their status page (at most once per few
    minutes). The link is minted when the e-mail is composed; it is never returned here."""
    with call(request, action=Action.SEND_STATUS_LINK, write=True) as (s, p, rt):
        queries.student(s, student_id, actor=p.actor)
        case_ids = queries.case_ids_of_student(s, student_id)
        if not case_ids:
            raise ValidationFailed("the student has no case yet; a status link shows cases")
        queued = auth.queue_status_link(
            s, case_ids[0], base_url=str(request.base_url), now=rt.now()
        )
        detail = (
            "the e-mail is queued"
            if queued
            else "a link was sent a few minutes ago; nothing new was queued"
        )
        return JSONResponse({"queued": queued, "detail": detail}, status_code=202)


@router.delete("/students/{student_id}/status-links", response_model=Revoked, tags=["students"])
def revoke_status_links(request: Request, student_id: Id) -> Any:
    """Revoke every status link of the student (and end the sessions opened by them)."""
    with call(request, action=Action.REVOKE_STATUS_LINKS, write=True) as (s, p, rt):
        queries.student(s, student_id, actor=p.actor)
        return {"revoked": auth.revoke_status_links(s, student_id, now=rt.now())}


# --- cases -------------------------------------------------------------------------------------


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
            return 201, _fired(fired)

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
        raise _unauthorized()
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
    expected = _version(if_match)
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
            return 201, _fired(fired)

        return idempotent(request, s, p, {**body.model_dump(), "if_match": expected}, run)


@router.get("/cases/{case_id}/history", response_model=list[dict[str, Any]], tags=["cases"])
def case_history(request: Request, case_id: Id) -> Any:
    """The audit trail of a case, oldest first."""
    with call(request) as (s, p, _rt):
        return jsonable_encoder(queries.history(s, case_id, actor=p.actor))


@router.put("/cases/{case_id}/examiner", response_model=Fired, tags=["cases"])
def put_examiner(request: Request, case_id: Id, body: ExaminerIn, if_match: IfMatch = None) -> Any:
    expected = _version(if_match)
    with call(request, write=True) as (s, p, rt):
        _expect(s, p, case_id, expected, rt.now(), action=Action.ASSIGN_EXAMINER)
        return _fired(assign_examiner(s, case_id, body.username, actor=p.actor, now=rt.now()))


@router.put("/cases/{case_id}/targets", response_model=Fired, tags=["cases"])
def put_targets(request: Request, case_id: Id, body: TargetsIn, if_match: IfMatch = None) -> Any:
    expected = _version(if_match)
    with call(request, write=True) as (s, p, rt):
        _expect(s, p, case_id, expected, rt.now(), action=Action.SET_TARGETS)
        return _fired(set_targets(s, case_id, body.modules, actor=p.actor, now=rt.now()))


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


@router.get("/cases/{case_id}/documents", response_model=list[DocumentOut], tags=["documents"])
def documents(request: Request, case_id: Id) -> Any:
    with call(request) as (s, p, _rt):
        return queries.documents(s, case_id, actor=p.actor)


@router.post(
    "/cases/{case_id}/documents", response_model=DocumentOut, status_code=201, tags=["documents"]
)
def upload_document(
    request: Request,
    case_id: Id,
    file: Annotated[UploadFile, File()],
    kind: Annotated[str, Form(max_length=20)] = "evidence",
) -> Response:
    with call(request, write=True) as (s, p, rt):
        queries.case_status(s, case_id, actor=p.actor, now=rt.now())  # 404 before all else
        if kind not in DOCUMENT_KINDS:
            raise ValidationFailed(
                f"unknown document kind {kind!r}; use one of {', '.join(DOCUMENT_KINDS)}"
            )
        content, media_type = read_upload(file)
        filename = safe_filename(file.filename)

        def run() -> tuple[int, Any]:
            doc_id, _ = attach_document(
                s,
                case_id,
                content=content,
                filename=filename,
                media_type=media_type,
                kind=kind,
                store=rt.store,
                actor=p.actor,
                now=rt.now(),
                channel="api",
            )
            doc = queries.document(s, case_id, doc_id, actor=p.actor)
            return 201, DocumentOut.model_validate(doc, from_attributes=True).model_dump(
                mode="json"
            )

        body = {"sha256": hashlib.sha256(content).hexdigest(), "kind": kind, "filename": filename}
        return idempotent(request, s, p, body, run)


@router.get(
    "/cases/{case_id}/documents/{document_id}",
    tags=["documents"],
    response_class=Response,
    responses={
        200: {"content": {t: {} for t in MEDIA_TYPES}, "description": "The document's bytes"}
    },
)
def download_document(request: Request, case_id: Id, document_id: Id) -> Response:
    with call(request) as (s, p, rt):
        doc = queries.document(s, case_id, document_id, actor=p.actor)
        return download_response(rt, doc)


# --- users and tokens --------------------------------------------------------------------------


def _user_out(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "username": u.username,
        "display_name": u.display_name,
        "role": u.role,
        "active": u.active,
        "programmes": sorted(g.code for g in u.programmes),
    }


@router.get("/users", response_model=list[UserOut], tags=["users"])
def users(request: Request) -> list[dict[str, Any]]:
    """The office users of your institution."""
    with call(request) as (s, p, _rt):
        return [_user_out(u) for u in queries.office_users(s, actor=p.actor)]


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"])
def create_user(request: Request, body: UserIn) -> Response:
    """Add an office user to your institution (admins only)."""
    with call(request, action=Action.ADD_USER, write=True) as (s, p, _rt):
        inst = s.get(Institution, p.actor.institution_id)
        assert inst is not None

        def run() -> tuple[int, Any]:
            user = catalog.add_user(
                s,
                username=body.username,
                role=body.role,
                institution=inst.code,
                display_name=body.display_name,
                email=body.email,
                programmes=body.programmes,
                language=body.language,
            )
            if body.password:
                catalog.set_user_password(s, user.username, body.password)
            return 201, _user_out(user)

        return idempotent(request, s, p, body.model_dump(), run)


@router.get("/tokens", response_model=list[TokenOut], tags=["auth"])
def tokens(request: Request) -> Any:
    """Your API tokens (never their secret)."""
    with call(request, action=Action.USE_API_TOKENS) as (s, p, _):
        assert p.actor.id is not None
        return auth.list_api_tokens(s, user_id=p.actor.id)


@router.post("/tokens", response_model=NewToken, status_code=201, tags=["auth"])
def create_token(request: Request, body: TokenIn) -> Response:
    """Create an API token acting as you; its secret is shown only in this response."""
    with call(request, action=Action.USE_API_TOKENS, write=True) as (s, p, rt):
        assert p.actor.id is not None
        now = rt.now()
        expires = now + dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None
        token_id, token = auth.create_api_token(
            s, user_id=p.actor.id, name=body.name, now=now, expires_at=expires
        )
        # Never stored for replay: a token's secret must not rest in the database.
        return JSONResponse(
            {"id": token_id, "name": body.name.strip(), "token": token}, status_code=201
        )


@router.delete("/tokens/{token_id}", status_code=204, tags=["auth"], response_class=Response)
def revoke_token(request: Request, token_id: Id) -> Response:
    with call(request, action=Action.USE_API_TOKENS, write=True) as (s, p, rt):
        assert p.actor.id is not None
        auth.revoke_api_token(s, token_id, user_id=p.actor.id, now=rt.now())
        return Response(status_code=204)


@router.get("/modules", response_model=list[ModuleOut], tags=["reference"])
def modules(request: Request) -> Any:
    """All home modules of your institution."""
    with call(request) as (s, p, _rt):
        return queries.office_modules(s, actor=p.actor)


# --- transcripts, conversions, cohorts, precedents, export -------------------------------------


@router.post("/transcripts", response_model=TranscriptReportOut, tags=["transcripts"])
def upload_transcript(
    request: Request,
    file: Annotated[
        UploadFile,
        File(
            description="ELMO 1.7, ELMO 2.0 or an EWP transcript-of-records response, sent as "
            "application/xml or text/xml"
        ),
    ],
) -> Response:
    """Import a partner's transcript of records: each result lands on its case (firing its
    events as the actor `import`), or waits for a clerk. A bad file is refused as a whole
    (422 naming `file`, `line` and `element`) and nothing from it is imported."""
    from workflow import import_transcript

    with call(request, action=Action.IMPORT_TRANSCRIPT, write=True) as (s, p, rt):
        content = read_transcript(file)
        name = safe_filename(file.filename or "transcript.xml")

        def run() -> tuple[int, Any]:
            report = import_transcript(
                s,
                content,
                filename=name,
                store=rt.store,
                now=rt.now(),
                home_institution_id=p.actor.institution_id,
                channel="api",
            )
            return 200, report_json(report, content)

        body = {"sha256": hashlib.sha256(content).hexdigest(), "filename": name}
        return idempotent(request, s, p, body, run)


@router.get("/transcripts/pending", response_model=list[PendingResultOut], tags=["transcripts"])
def pending_transcripts(request: Request) -> Any:
    """Imported results of your institution that matched no case, or several."""
    with call(request, action=Action.SEE_PENDING_RESULTS) as (s, p, _rt):
        return jsonable_encoder(queries.pending_results(s, actor=p.actor))


@router.post(
    "/transcripts/pending/{result_id}/match", response_model=MatchOut, tags=["transcripts"]
)
def match_transcript(request: Request, result_id: Id, body: MatchIn) -> Response:
    """Apply a waiting result to a case by hand: the same events as an automatic match."""
    from workflow import match_by_hand

    with call(request, write=True) as (s, p, rt):

        def run() -> tuple[int, Any]:
            events = match_by_hand(
                s,
                result_id,
                body.case_id,
                store=rt.store,
                actor=p.actor,
                now=rt.now(),
                channel="api",
            )
            return 200, {"result_id": result_id, "case_id": body.case_id, "events": events}

        return idempotent(request, s, p, {"result_id": result_id, **body.model_dump()}, run)


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
        return inconsistent(s, now=rt.now(), institution_id=p.actor.institution_id)


# --- grading tables and both conversions (percentile conversion) -------------------------------


class GradingTableOut(BaseModel):
    id: int
    kind: Literal["partner", "home"]
    institution: str = Field(description="The institution's code.")
    scheme: str = Field(description="The grading scheme of the grades (home: de).")
    scope: str = Field(
        description="The reference group: offering:ID, isced:CODE, programme:ID, module:ID or all."
    )
    scope_label: str
    reference_year: int
    source: Literal["ewp", "result_distribution", "manual"]
    grades: list[dict[str, Any]] = Field(
        description="Best first: label, percentage, failing and (from counts) count."
    )
    filename: str | None
    updated_at: dt.datetime


class GradingTableImportOut(BaseModel):
    created: int
    updated: int
    unchanged: int


class ConversionsOut(BaseModel):
    """The partner grade by the modified Bavarian formula and by percentiles, side by side."""

    original: str
    scheme: str
    bavarian: dict[str, Any] | None
    bavarian_error: str | None
    percentile: dict[str, Any] | None
    percentile_error: str | None
    tables_known: bool
    tables: dict[str, Any] | None = Field(
        description="The partner table and home distribution found for the case."
    )
    tables_missing: str | None = Field(description="Which table is not stored, if any.")
    difference: str | None
    differs: bool = Field(
        description=f"True when the two differ by {DIFFERENCE_THRESHOLD} or more."
    )
    threshold: str = Field(description="The difference from which the two are flagged.")
    suggested: str | None
    methods: list[str] = Field(description="What the examiner may choose as conversion=.")


@router.get("/grading-tables", response_model=list[GradingTableOut], tags=["reference"])
def grading_tables_list(
    request: Request,
    kind: Annotated[Literal["partner", "home"] | None, Query()] = None,
    institution: Annotated[str | None, Query(max_length=120)] = None,
) -> Any:
    """Stored grading tables: partners' tables and your institution's own distributions."""
    from workflow import list_tables

    with call(request) as (s, p, _rt):
        return list_tables(s, kind=kind, institution=institution, actor=p.actor)


@router.post("/grading-tables/import", response_model=GradingTableImportOut, tags=["reference"])
def grading_tables_import(
    request: Request,
    file: Annotated[
        UploadFile,
        File(
            description="CSV or JSON, one row per grade: kind, institution, scheme, "
            "reference_year, grade, percentage or count, and optionally isced, "
            "course+term, programme or module"
        ),
    ],
) -> Response:
    """Import partner grading tables and your grade distribution (all rows checked first;
    any problem and nothing is imported, 422 naming line and field)."""
    from workflow import import_file

    content, name, suffix = import_upload(file, "grading table", "grading-tables.csv")
    with call(request, action=Action.IMPORT_GRADING_TABLES, write=True) as (s, p, rt):

        def run() -> tuple[int, Any]:
            with as_file(content, "grading-tables", suffix) as path:
                summary = import_file(
                    s,
                    path,
                    now=rt.now(),
                    home_institution_id=p.actor.institution_id,
                    filename=safe_filename(name),
                )
            return 200, {
                "created": summary.created,
                "updated": summary.updated,
                "unchanged": summary.unchanged,
            }

        body = {"sha256": hashlib.sha256(content).hexdigest(), "suffix": suffix}
        return idempotent(request, s, p, body, run)


@router.get("/cases/{case_id}/conversions", response_model=ConversionsOut, tags=["cases"])
def case_conversions(request: Request, case_id: Id) -> Any:
    """The case's partner grade converted by both methods, with the grading tables used and
    the flag when they differ by `threshold` or more: what the examiner sees before choosing
    (404 without a partner grade)."""
    from workflow import case_side_by_side

    with call(request) as (s, p, rt):
        view = case_side_by_side(s, case_id, actor=p.actor, rounding=rt.settings.grade_rounding)
        if view is None:
            raise NotFound(f"case {case_id} has no partner grade to convert yet")
        return view
