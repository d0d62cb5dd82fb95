"""Guards: the preconditions an event checks before it may change a case.

Each guard receives the context of one ``fire`` call, raises :class:`GuardFailed` (or
``Forbidden``) with a sentence that says what to do, and may normalise the event data or add
column updates for the case (the partner result, the decision, the examiner). Guards only read;
the engine writes.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Integer, bindparam, literal, or_, select
from sqlalchemy.orm import Session

from config.errors import ConfigurationError
from config.procedure import EventDef, Procedure, get_procedure
from config.settings import Settings
from models import (
    Case,
    Document,
    HomeAchievement,
    Module,
    Programme,
    Role,
    User,
    case_targets,
    user_programmes,
)
from workflow.cases.deadlines import local_date
from workflow.errors import DomainError, Forbidden, GuardFailed, ValidationFailed
from workflow.grading.grades import convert
from workflow.office.zones import zone_named
from workflow.policy.actors import Actor
from workflow.policy.permissions import PERMISSIONS, Action
from workflow.texts import format_instant

GERMAN_STEPS = ("1.0", "1.3", "1.7", "2.0", "2.3", "2.7", "3.0", "3.3", "3.7", "4.0")
PASSED = "passed"
# The criteria of a "substantial difference" (Lisbon Recognition Convention, ECTS Users' Guide).
CRITERIA = ("level", "workload", "learning_outcomes", "profile", "quality")
MAX_TEXT = 5000
# The ``source`` of a result read from a partner's transcript (workflow.transcripts.importing).
FROM_TRANSCRIPT = "transcript import"


@dataclass
class GuardContext:
    session: Session
    row: Any
    actor: Actor
    now: dt.datetime
    data: dict[str, Any]
    settings: Settings
    event: str
    case_ref: str
    cache: dict[Any, Any] = field(default_factory=dict)  # shared by the cases of one batch
    updates: dict[str, Any] = field(default_factory=dict)

    def fail(self, why: str) -> GuardFailed:
        return GuardFailed(f"cannot {self.event} {self.case_ref}: {why}")

    @property
    def zone(self) -> ZoneInfo:
        """The case's institution's zone: its deadlines are counted, and said, in it."""
        return zone_named(getattr(self.row, "timezone", None), self.settings)

    def when(self, instant: dt.datetime) -> str:
        """``instant`` as a refusal says it: local time of the case's institution."""
        return format_instant(instant, self.zone)


def _text(ctx: GuardContext, key: str, what: str) -> str:
    value = ctx.data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ctx.fail(f"{what} is required (the field {key})")
    if len(value) > MAX_TEXT:
        raise ctx.fail(f"{key} is {len(value)} characters long; at most {MAX_TEXT} are allowed")
    ctx.data[key] = value.strip()
    return value.strip()


def _date(ctx: GuardContext, key: str, what: str) -> dt.date:
    value = ctx.data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ctx.fail(f"{what} is required (the field {key}, as YYYY-MM-DD)")
    try:
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    except ValueError:
        raise ctx.fail(
            f"{what} must be a date as YYYY-MM-DD (the field {key}), not {value!r}"
        ) from None
    if day > local_date(ctx.now, ctx.zone) + dt.timedelta(days=1):
        raise ctx.fail(f"{what} {day} lies in the future")
    ctx.data[key] = day.isoformat()
    return day


def course_offered(ctx: GuardContext) -> None:
    if ctx.row.offering_status != "offered":
        raise ctx.fail(
            f"the course {ctx.row.offering_code} ({ctx.row.offering_term}) is "
            f"{ctx.row.offering_status}, not offered; the student can only withdraw the case "
            "(a clerk may open a new one on an offered course)"
        )


def result_data(ctx: GuardContext) -> None:
    result: dict[str, Any] = {"passed": ctx.event == "pass_course"}
    given = ctx.data.get("date")
    from_transcript = ctx.actor.role is Role.IMPORT or ctx.data.get("source") == FROM_TRANSCRIPT
    if from_transcript and (given is None or given == ""):
        # A transcript without the result's date (imported, or matched by a clerk): kept
        # unknown, never the import day; a clerk records it (casefile.record_result_date)
        # before a decision credits it.
        ctx.data.pop("date", None)
        result["date"] = None
    elif given is None or (isinstance(given, str) and not given.strip()):
        # As the engine refuses a missing required field (the procedure cannot say "required
        # but for a transcript's result").
        raise ValidationFailed(
            f"cannot {ctx.event} {ctx.case_ref}: date is required (the date of the result, "
            "as YYYY-MM-DD)"
        )
    else:
        result["date"] = _date(ctx, "date", "the result date").isoformat()
    if ctx.event == "pass_course":
        result["grade"] = _text(ctx, "grade", "the grade as printed on the transcript")
    elif isinstance(ctx.data.get("grade"), str):
        result["grade"] = ctx.data["grade"]
    for key in ("scheme", "ects", "eqf_level", "language", "source"):
        if key in ctx.data:
            result[key] = ctx.data[key]
    ctx.updates["result"] = result


def document_attached(ctx: GuardContext) -> None:
    """A transcript of records is attached by someone the permission table lets attach one
    (the office or an import); a document of kind transcript anybody else added (a student,
    before the table said so) does not count."""
    roles = [r.value for r in PERMISSIONS[Action.ATTACH_TRANSCRIPT].roles]
    found = ctx.session.execute(
        select(Document.id)
        .where(
            Document.case_id == ctx.row.id,
            Document.kind == "transcript",
            Document.uploaded_by_role.in_(roles),
        )
        .limit(1)
    ).first()
    if found is None:
        raise ctx.fail(
            "no transcript of records is attached; a clerk must attach the partner's "
            "transcript (a document of kind transcript) first"
        )


def _target_ids(ctx: GuardContext) -> list[int]:
    return list(
        ctx.session.scalars(
            select(case_targets.c.module_id).where(case_targets.c.case_id == ctx.row.id)
        )
    )


def target_set(ctx: GuardContext) -> None:
    if not _target_ids(ctx):
        raise ctx.fail(
            "no target module is set; the student or a clerk must first name the home "
            "module(s) it should be credited to"
        )


def not_passed_at_home(ctx: GuardContext) -> None:
    passed = ctx.session.execute(
        select(Module.code, HomeAchievement.passed_on)
        .join(HomeAchievement, HomeAchievement.module_id == Module.id)
        .join(case_targets, case_targets.c.module_id == Module.id)
        .where(
            case_targets.c.case_id == ctx.row.id, HomeAchievement.student_id == ctx.row.student_id
        )
    ).all()
    if passed:
        listed = ", ".join(f"{code} (passed {day})" for code, day in passed)
        raise ctx.fail(
            f"the student has already passed {listed} at home; the student or a clerk must "
            "choose another target module"
        )


def may_review(user_id: Any, programme_id: Any) -> ColumnElement[bool]:
    """Who may review a case, as SQL: an examiner who holds the case's programme (any
    examiner of its institution while the case has no programme yet). ``user_id`` and
    ``programme_id`` are columns or values; the examiners a page offers and the check of an
    assignment use this one rule."""
    programme = (
        programme_id
        if isinstance(programme_id, ColumnElement)
        else literal(programme_id, Integer())
    )
    holds = (
        select(user_programmes.c.user_id)
        .where(
            user_programmes.c.user_id == user_id,
            user_programmes.c.programme_id == programme,
        )
        .exists()
    )
    return or_(programme.is_(None), holds)


@dataclass(frozen=True, slots=True)
class Reviewer:
    """An examiner named for a case: their id, or why they cannot review it (``unknown``: no
    such user in the case's institution)."""

    user_id: int | None
    refusal: str | None = None
    unknown: bool = False


def reviewer(
    session: Session, username: str, *, institution_id: int, programme_id: int | None
) -> Reviewer:
    """Whether ``username`` may review a case of this institution and programme: an active
    examiner of the institution who holds the programme (``may_review``)."""
    user = session.execute(
        select(
            User.id,
            User.role,
            User.institution_id,
            User.active,
            may_review(User.id, programme_id).label("reviews"),
        ).where(User.username == username)
    ).first()
    if user is None or user.institution_id != institution_id:
        return Reviewer(None, f"there is no user {username!r} in this case's institution", True)
    if user.role != Role.EXAMINER.value or not user.active:
        return Reviewer(None, f"{username!r} is not an active examiner")
    if not user.reviews:
        code = session.scalar(select(Programme.code).where(Programme.id == programme_id))
        return Reviewer(
            None, f"{username!r} does not examine the case's programme {code}; assign one who does"
        )
    return Reviewer(user.id)


def examiner_assigned(ctx: GuardContext) -> None:
    wanted = ctx.data.get("examiner")
    if wanted is None:
        if ctx.row.examiner_id is None:
            raise ctx.fail(
                "no examiner is assigned; a clerk must assign one first, or name one in the "
                "field examiner (their user name)"
            )
        return
    found = reviewer(
        ctx.session,
        str(wanted),
        institution_id=ctx.row.institution_id,
        programme_id=ctx.row.programme_id,
    )
    if found.refusal is not None:
        raise ctx.fail(found.refusal)
    ctx.updates["examiner_id"] = found.user_id
    ctx.data["examiner_id"] = found.user_id
    del ctx.data["examiner"]  # the audit trail keeps ids, not names


def assigned_examiner(ctx: GuardContext) -> None:
    if ctx.row.examiner_id != ctx.actor.id:
        raise Forbidden(
            f"cannot {ctx.event} {ctx.case_ref}: it is assigned to another examiner; only "
            "they may act on it (a clerk can assign it to you)"
        )


def message_given(ctx: GuardContext) -> None:
    _text(ctx, "message", "a message")


def reasons_given(ctx: GuardContext) -> None:
    _text(ctx, "reasons", "the reasons")


def _codes(ctx: GuardContext, key: str) -> list[str]:
    value = ctx.data.get(key)
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ctx.fail(
            f"{key} must name at least one home module code (the field {key}: one or more codes)"
        )
    return list(dict.fromkeys(value))


# The home modules an event names, by code: of the case's institution, and of its programme
# once it has one. Built once (building the statement cost more than running it).
_MODULES_OF_INSTITUTION = (
    select(Module.code, Module.title, Module.ects, Module.programme_id, Module.regulation_version)
    .join(Programme, Programme.id == Module.programme_id)
    .where(
        Programme.institution_id == bindparam("institution_id"),
        Module.code.in_(bindparam("codes", expanding=True)),
    )
)
_MODULES_OF_PROGRAMME = _MODULES_OF_INSTITUTION.where(
    Module.programme_id == bindparam("programme_id")
)


def _modules(ctx: GuardContext, key: str) -> list[dict[str, Any]]:
    codes = _codes(ctx, key)
    cache_key = ("modules", ctx.row.institution_id, ctx.row.programme_id, tuple(codes))
    if cache_key in ctx.cache:
        ctx.data[key] = codes
        return list(ctx.cache[cache_key])
    params: dict[str, Any] = {"institution_id": ctx.row.institution_id, "codes": codes}
    query = _MODULES_OF_INSTITUTION
    if ctx.row.programme_id is not None:
        query, params["programme_id"] = _MODULES_OF_PROGRAMME, ctx.row.programme_id
    found: dict[str, Any] = {}
    for mod in ctx.session.connection().execute(query, params):  # Core: no ORM layer needed
        if mod.code in found:
            raise ctx.fail(
                f"module code {mod.code} exists in several programmes; set the "
                "case's programme first"
            )
        found[mod.code] = mod
    missing = [c for c in codes if c not in found]
    if missing:
        raise ctx.fail(f"unknown home module(s) {', '.join(missing)}")
    ctx.data[key] = codes
    modules = [
        {
            "code": c,
            "title": found[c].title,
            "ects": str(found[c].ects),
            "regulation_version": found[c].regulation_version,
        }
        for c in codes
    ]
    ctx.cache[cache_key] = modules
    return list(modules)


METHODS = ("bavarian", "percentile")


def chosen_method(data: Mapping[str, Any]) -> str | None:
    """The conversion method event data names (``conversion=bavarian|percentile``); the
    Bavarian formula when none is named; None when the value names no method."""
    chosen = data.get("conversion")
    if chosen is None or chosen == "":
        return "bavarian"
    if isinstance(chosen, str) and chosen.strip().lower() in METHODS:
        return chosen.strip().lower()
    return None


def _method(ctx: GuardContext) -> str:
    """The conversion method the examiner chose. The conversion itself is always computed
    here, never taken from the caller."""
    method = chosen_method(ctx.data)
    if method is None:
        raise ctx.fail(
            f"conversion names the method of grade conversion: "
            f"{' or '.join(METHODS)} (the field conversion)"
        )
    return method


def _conversion(ctx: GuardContext) -> dict[str, Any] | None:
    """The partner's grade converted by the chosen method (the office's rules by default), if
    the case has a convertible result: shown to the examiner and stored with the decision,
    whatever grade is chosen."""
    method = _method(ctx)
    ctx.data.pop("conversion", None)
    result = ctx.row.result or {}
    if not result.get("grade") or not result.get("scheme"):
        if method == "percentile":
            raise ctx.fail(
                "the case has no partner grade with its grading scheme to convert by percentiles"
            )
        return None
    if method == "percentile":
        return _percentile(ctx, str(result["grade"]), str(result["scheme"]))
    grade, scheme, rounding = result["grade"], result["scheme"], ctx.settings.grade_rounding
    # In a cohort the same grades recur: each distinct one is converted once per batch (a
    # Conversion is immutable, and every case still gets its own dict of it).
    key = (
        ("bavarian", grade, scheme, rounding)
        if isinstance(grade, str) and isinstance(scheme, str)
        else None
    )
    outcome = ctx.cache.get(key) if key is not None else None
    if outcome is None:
        try:
            outcome = convert(grade, scheme, rounding)
        except DomainError as exc:
            outcome = exc
        if key is not None:
            ctx.cache[key] = outcome
    if isinstance(outcome, DomainError):
        return {"original": grade, "scheme": scheme, "error": str(outcome)}
    return outcome.to_dict()


def _percentile(ctx: GuardContext, grade: str, scheme: str) -> dict[str, Any]:
    """The percentile conversion with the case's grading tables (their ids, groups, years and
    percentages among its parameters), and how far the Bavarian formula lies from it."""
    from workflow.grading import tables as grading_tables

    tables = grading_tables.tables_for_case(  # the cases of a batch share their tables
        ctx.session, ctx.row.id, memo=ctx.cache.setdefault("grading_tables", {})
    )
    if not tables.known:
        raise ctx.fail(
            f"the percentile conversion needs grading tables: {tables.missing()}; "
            "or choose conversion=bavarian"
        )
    # The same side-by-side the examiner was shown (grading_tables.side_by_side).
    by_formula, by_table, both, errors = grading_tables.side_by_side(
        grade, scheme, ctx.settings.grade_rounding, tables
    )
    if by_table is None:
        raise ctx.fail(f"the percentile conversion failed: {errors['percentile']}")
    stored = by_table.to_dict()
    if by_formula is None or both is None:
        stored["compared"] = {"method": "bavarian", "grade": None, "error": errors["bavarian"]}
    else:
        stored["compared"] = {
            "method": "bavarian",
            "grade": by_formula.grade,
            "difference": None if both.difference is None else str(both.difference),
            "differs": both.differs,
        }
    return stored


def _grade(ctx: GuardContext) -> str:
    conversion = _conversion(ctx)
    if conversion is not None:
        ctx.data["conversion"] = conversion
    if not str(ctx.data.get("grade", "")).strip() and conversion and conversion.get("grade"):
        ctx.data["grade"] = conversion["grade"]  # the examiner accepts the converted grade
    raw = str(ctx.data.get("grade", "")).strip().replace(",", ".").lower()
    if raw in (PASSED, "bestanden", "pass"):
        grade = PASSED
    else:
        try:
            grade = f"{Decimal(raw):.1f}"
        except InvalidOperation:
            grade = raw
        converted = conversion.get("grade") if conversion else None
        if not raw:
            raise ctx.fail(_no_grade(ctx, conversion))
        if grade not in GERMAN_STEPS and grade != converted:
            raise ctx.fail(
                f"the converted grade must be one of {' '.join(GERMAN_STEPS)} or "
                f"'passed' (the field grade), not {ctx.data.get('grade')!r}"
            )
    ctx.data["grade"] = grade
    return grade


def _no_grade(ctx: GuardContext, conversion: dict[str, Any] | None) -> str:
    """Why no grade could be taken: none was given and the partner's grade does not convert."""
    ask = f"give the German grade as grade= (one of {' '.join(GERMAN_STEPS)} or 'passed')"
    result = ctx.row.result or {}
    if conversion is not None and conversion.get("error"):
        return (
            f"{ask}: the partner's grade {conversion['original']} ({conversion['scheme']}) "
            f"cannot be converted: {conversion['error']}"
        )
    if result.get("grade") and not result.get("scheme"):
        return (
            f"{ask}: the partner's grade {result['grade']} was recorded without its grading "
            "scheme (scheme= with the result), so it cannot be converted"
        )
    return f"{ask}: the case has no partner grade to convert"


def _ects(ctx: GuardContext, modules: list[dict[str, Any]]) -> str:
    total = sum((Decimal(m["ects"]) for m in modules), Decimal(0))
    given = ctx.data.get("ects")
    if given is not None:
        try:
            matches = Decimal(str(given).replace(",", ".")) == total
        except InvalidOperation:
            matches = False
        if not matches:
            raise ctx.fail(
                f"ects={given} does not match the {total} ECTS of the module(s) "
                f"{', '.join(m['code'] for m in modules)}; recognition is per "
                "whole module, never a fraction of one"
            )
    ctx.data["ects"] = str(total)
    return str(total)


def _reasons(ctx: GuardContext) -> dict[str, str]:
    reasons = ctx.data.get("reasons")
    if not isinstance(reasons, dict) or not reasons:
        raise ctx.fail(
            "the substantial differences must be stated per criterion (the field reasons: "
            f"an explanation for each criterion that applies, of {', '.join(CRITERIA)})"
        )
    clean: dict[str, str] = {}
    for criterion, text in reasons.items():
        if criterion not in CRITERIA:
            raise ctx.fail(f"unknown criterion {criterion!r}; use {', '.join(CRITERIA)}")
        if not isinstance(text, str) or not text.strip():
            raise ctx.fail(f"the criterion {criterion} needs an explanation")
        clean[criterion] = text.strip()[:MAX_TEXT]
    ctx.data["reasons"] = clean
    return clean


def _decision(ctx: GuardContext, outcome: str, **parts: Any) -> None:
    decision = {
        "outcome": outcome,
        "event": ctx.event,  # whose decision: the office's, or the board's on an objection
        "decided_at": ctx.now.isoformat(),
        "decided_by": ctx.actor.id,
        **parts,
    }
    if isinstance(ctx.data.get("conversion"), dict):
        decision["conversion"] = ctx.data["conversion"]
    ctx.updates["decision"] = decision


def _result_date_known(ctx: GuardContext) -> None:
    """A decision that credits the course needs the date of the partner's result; an
    imported one may have come without it (``result_data``)."""
    result = ctx.row.result
    if result and "date" in result and not result["date"]:
        raise ctx.fail(
            "the date of the partner's result is unknown (the transcript gave none); a clerk "
            "must record it first (on the case page, or: recog case result-date "
            f"{ctx.row.id} YYYY-MM-DD)"
        )


def recognition_data(ctx: GuardContext) -> None:
    _result_date_known(ctx)
    modules = _modules(ctx, "modules")
    _decision(ctx, "recognized", modules=modules, ects=_ects(ctx, modules), grade=_grade(ctx))


def partial_recognition_data(ctx: GuardContext) -> None:
    _result_date_known(ctx)
    modules = _modules(ctx, "modules")
    not_credited = _modules(ctx, "not_credited")
    overlap = {m["code"] for m in modules} & {m["code"] for m in not_credited}
    if overlap:
        raise ctx.fail(f"{', '.join(sorted(overlap))} cannot be both credited and not credited")
    _decision(
        ctx,
        "partially_recognized",
        modules=modules,
        ects=_ects(ctx, modules),
        grade=_grade(ctx),
        not_credited=not_credited,
        reasons=_reasons(ctx),
        advice=_text(ctx, "advice", "how recognition could still be obtained"),
    )


def rejection_reasons(ctx: GuardContext) -> None:
    _decision(
        ctx,
        "rejected",
        reasons=_reasons(ctx),
        advice=_text(ctx, "advice", "how recognition could still be obtained"),
    )


def _window_closed(ends: dt.datetime | None, now: dt.datetime, zone: dt.tzinfo) -> str | None:
    if ends is None:
        return "there is no open appeal window (it opens when a decision is issued)"
    if now >= ends:
        return f"the appeal window ended at {format_instant(ends, zone)}"
    return None


def inside_appeal_window(ctx: GuardContext) -> None:
    why = _window_closed(ctx.row.appeal_ends_at, ctx.now, ctx.zone)
    if why:
        raise ctx.fail(why)


# An objection (Widerspruch, § 70 VwGO) lies against every decision of the office, a full
# recognition too (it is an administrative act: its grade or credits may be contested), within
# the appeal window; against the board's decision on an objection the remedy is an action at
# the administrative court (§§ 68, 74 VwGO), outside Recog. docs/adr/0015-appeal-and-finality.md
OBJECTION = "objection_open"


def decisions_on_objection(proc: Procedure) -> frozenset[str]:
    """The events that decide an objection: those from a state that filing one (an event
    checked by ``objection_open``) leads to; in the default procedure the board's
    ``grant_appeal`` and ``dismiss_appeal``."""
    filed = {ev.dest for ev in proc.events.values() if OBJECTION in ev.guards}
    return frozenset(ev.name for ev in proc.events.values() if filed.intersection(ev.sources))


def objectionable(proc: Procedure) -> frozenset[str]:
    """The deciding events an objection lies against: the office's decisions (a full
    recognition too), not the board's on an objection. Their notices and e-mails instruct on
    the objection."""
    return decision_events(proc) - decisions_on_objection(proc)


def why_no_objection(
    proc: Procedure,
    decision: Mapping[str, Any] | None,
    appeal_ends: dt.datetime | None,
    now: dt.datetime,
    zone: dt.tzinfo,
) -> str | None:
    """Why a student may not object to the case's decision now (None: they may). The one
    rule the guard applies and the pages use to offer the objection."""
    if decision and decision.get("event") in decisions_on_objection(proc):
        return (
            "the examination board has decided on the objection; a further objection is not "
            "available (the board's notice names the remedy: an action at the administrative "
            "court)"
        )
    return _window_closed(appeal_ends, now, zone)


def objection_open(ctx: GuardContext) -> None:
    # The decision is read here only: the engine's row leaves it out (it is large, and only
    # an objection needs it).
    decision = ctx.session.scalar(select(Case.decision).where(Case.id == ctx.row.id))
    why = why_no_objection(procedure(), decision, ctx.row.appeal_ends_at, ctx.now, ctx.zone)
    if why:
        raise ctx.fail(why)


def appeal_window_over(ctx: GuardContext) -> None:
    """A decision becomes final when its appeal window ends (§ 70 VwGO): until then no case
    is closed, whoever asks and whatever was decided; a student who wants it final sooner
    waives the remedy (``waive_appeal``)."""
    ends = ctx.row.appeal_ends_at
    if ends is not None and ctx.now < ends:
        raise ctx.fail(
            f"the appeal window is open until {ctx.when(ends)}; after that a clerk may close "
            "the case (the timer closes it at that moment), or sooner if the student waives the "
            "right to object"
        )


def deadline_passed(ctx: GuardContext) -> None:
    due = ctx.row.due_at
    if due is None or ctx.now < due:
        raise ctx.fail(
            f"its deadline ({ctx.row.due_kind}) has not passed yet; the timer lets it lapse "
            "only then" + (f"; it is due {ctx.when(due)}" if due else "")
        )


GUARDS: dict[str, Callable[[GuardContext], None]] = {
    "course_offered": course_offered,
    "result_data": result_data,
    "document_attached": document_attached,
    "target_set": target_set,
    "not_passed_at_home": not_passed_at_home,
    "examiner_assigned": examiner_assigned,
    "assigned_examiner": assigned_examiner,
    "message_given": message_given,
    "reasons_given": reasons_given,
    "recognition_data": recognition_data,
    "partial_recognition_data": partial_recognition_data,
    "rejection_reasons": rejection_reasons,
    "inside_appeal_window": inside_appeal_window,
    "objection_open": objection_open,
    "appeal_window_over": appeal_window_over,
    "deadline_passed": deadline_passed,
}

# The guards that write the case's decision (``_decision``): an event checked by one of them
# decides the case, and its decision becomes a precedent (``decisions.precedents``).
DECIDING_GUARDS = frozenset({"recognition_data", "partial_recognition_data", "rejection_reasons"})


def decides(event: EventDef) -> bool:
    """Whether ``event`` decides a case (one of its guards writes the decision)."""
    return not DECIDING_GUARDS.isdisjoint(event.guards)


def decision_events(proc: Procedure) -> frozenset[str]:
    """The events of ``proc`` that decide a case."""
    return frozenset(name for name, ev in proc.events.items() if decides(ev))


# The procedures whose guard names were checked against ``GUARDS`` (by object: a process
# has one, the tests load several); weak, so a procedure let go is not kept alive here.
_CHECKED: weakref.WeakValueDictionary[int, Procedure] = weakref.WeakValueDictionary()


def checked(proc: Procedure) -> Procedure:
    """``proc``, once its events name only guards of ``GUARDS`` (the one registry: the
    config layer cannot import it); else a ``ConfigurationError`` naming the procedure's
    file, the event and the guard. The engine asks this before it uses a procedure."""
    if _CHECKED.get(id(proc)) is proc:
        return proc
    for ev in proc.events.values():
        for guard in ev.guards:
            if guard not in GUARDS:
                raise ConfigurationError(
                    f"procedure {proc.source}: event {ev.name}: guards names unknown "
                    f"{guard!r}; known: {', '.join(GUARDS)}"
                )
    _CHECKED[id(proc)] = proc
    return proc


def procedure() -> Procedure:
    """The process's procedure (``config.procedure.get_procedure``), its guards checked."""
    return checked(get_procedure())
