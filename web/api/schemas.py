"""The request and response models of the API: what the OpenAPI schema publishes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from web.params import Id
from workflow import COHORT_EVENTS, DIFFERENCE_THRESHOLD


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


class ResultDateIn(Strict):
    date: dt.date = Field(description="The date of the partner's result (YYYY-MM-DD).")


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
    scope: Literal["read", "write", "admin"] = Field(
        default="read",
        description="read: see; write: also change cases and data; admin: also manage users "
        "(admins only). A token may make tokens of its own scope or less.",
    )


class TokenOut(BaseModel):
    id: int
    name: str
    scope: str
    parent_id: int | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class Invited(BaseModel):
    username: str
    expires_at: dt.datetime


class NewToken(BaseModel):
    id: int
    name: str
    scope: str
    expires_at: dt.datetime | None
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
    result_flags: list[dict[str, Any]] = Field(
        description="What to check about the result before deciding: its date unknown "
        "(field date; a clerk records it: PUT .../result-date), its ECTS or EQF level other "
        "than the catalogue's (field ects or eqf_level, with the result's and the "
        "catalogue's value)."
    )
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
    # The workflow's one list (a partial recognition is decided case by case); the
    # workflow refuses any other event too, this only publishes the list and answers 422.
    event: str = Field(
        description="The decision for every case.",
        json_schema_extra={"enum": list(COHORT_EVENTS)},
    )

    @field_validator("event")
    @classmethod
    def _a_cohort_event(cls, value: str) -> str:
        if value not in COHORT_EVENTS:
            raise ValueError(
                f"a cohort is decided by {' or '.join(COHORT_EVENTS)}; "
                "other decisions are taken case by case"
            )
        return value

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
