"""A cohort decision: one decision for every waiting case of the same course offering and
target module, each with its own student's converted grade, all or none."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.procedure import get_procedure
from config.settings import Settings, get_settings
from models import Case, Institution, Module, Offering, Student, case_targets
from workflow.cases.engine import FiredEvent, case_ref, fire_many
from workflow.cases.guards import chosen_method
from workflow.errors import GuardFailed, NotFound, ValidationFailed
from workflow.grading.grades import Rounding
from workflow.grading.tables import side_by_side, tables_for_case
from workflow.policy.actors import Actor, case_scope
from workflow.policy.permissions import Action, require

# A partial recognition states, per case, what is and is not credited and why: it is never
# one decision for many students, whichever interface asks.
COHORT_EVENTS = ("recognize", "reject")
# The events that convert a grade: where the examiner chooses conversion=bavarian|percentile.
CONVERTING_EVENTS = ("recognize",)


def waiting_cases(
    session: Session, *, offering_id: int, module_code: str, actor: Actor
) -> list[int]:
    """Cases in review for this offering with this target module that the actor decides."""
    require(actor, Action.DECIDE_COHORT)
    return list(
        session.scalars(
            select(Case.id)
            .join(case_targets, case_targets.c.case_id == Case.id)
            .join(Module, Module.id == case_targets.c.module_id)
            .where(
                Case.offering_id == offering_id,
                Module.code == module_code,
                Case.state.in_(get_procedure().sources_of(*COHORT_EVENTS)),
                Case.examiner_id == actor.id,
                case_scope(actor),
            )
            .order_by(Case.id)
        )
    )


def decide(
    session: Session,
    *,
    offering_id: int,
    module_code: str,
    event: str,
    data: dict[str, Any],
    actor: Actor,
    now: dt.datetime,
    channel: str = "api",
    settings: Settings | None = None,
) -> list[FiredEvent]:
    """Fire ``event`` on every waiting case at once; the grade, if not given, is each
    student's own result converted by the office's rules. One audit event per case."""
    require(actor, Action.DECIDE_COHORT)
    if event not in COHORT_EVENTS:
        raise ValidationFailed(
            f"a cohort is decided by {' or '.join(COHORT_EVENTS)}, not {event!r}; other "
            "decisions (a partial recognition among them) are taken case by case"
        )
    cases = waiting_cases(session, offering_id=offering_id, module_code=module_code, actor=actor)
    if not cases:
        raise NotFound(
            f"no case of course offering {offering_id} with target module "
            f"{module_code} is waiting for your decision"
        )
    try:
        return fire_many(
            session,
            cases,
            event,
            actor=actor,
            now=now,
            data_for=lambda _row: dict(data),
            channel=channel,
            settings=settings,
        )
    except GuardFailed:
        # Refused before anything was written. By percentiles, name every case the tables
        # cannot convert, not only the first the batch met.
        if event in CONVERTING_EVENTS and chosen_method(data) == "percentile":
            rounding = (settings or get_settings()).grade_rounding
            _check_percentile(session, cases, event=event, rounding=rounding)
        raise


def _check_percentile(
    session: Session, cases: list[int], *, event: str, rounding: Rounding
) -> None:
    """Refuse a cohort decision by percentiles when a case of it cannot be converted so,
    naming every such case and why. (Each case's guard converts it and stores the conversion,
    exactly as a decision on the case alone does; this only says which cases it cannot.)"""
    refused = [
        (c["case_id"], c["percentile_error"])
        for c in _conversions(session, cases, rounding)
        if c["percentile"] is None
    ]
    if refused:
        one = len(refused) == 1
        named = ", ".join(str(case_id) for case_id, _ in refused)
        reasons = "; ".join(f"{case_ref(case_id)}: {why}" for case_id, why in refused)
        raise GuardFailed(
            f"cannot {event.replace('_', ' ')} the cohort by the percentile conversion: "
            f"{'case' if one else 'cases'} {named} of its {len(cases)} cannot be converted "
            "by percentiles, so nothing was decided (choose conversion=bavarian, or decide "
            f"{'that case on its own' if one else 'those cases on their own'}). Why: {reasons}"
        )


def preview(
    session: Session, *, offering_id: int, module_code: str, actor: Actor, rounding: Rounding
) -> list[dict[str, Any]]:
    """What a cohort decision would decide, before it is taken: each waiting case with its
    student, the partner's grade as printed and that grade converted by the office's rules
    (or why it cannot be converted: then the cohort is refused as a whole unless one grade
    is given for all), and by percentiles where the case's grading tables allow it (or why
    not), flagged when the two differ by ``DIFFERENCE_THRESHOLD`` or more."""
    cases = waiting_cases(session, offering_id=offering_id, module_code=module_code, actor=actor)
    return _conversions(session, cases, rounding) if cases else []


def _conversions(
    session: Session,
    cases: list[int],
    rounding: Rounding,
) -> list[dict[str, Any]]:
    """Each case's partner grade by both methods, side by side, as the case page shows it
    (``workflow.grading.tables.side_by_side`` with the case's own tables)."""
    rows = session.execute(
        select(
            Case.id,
            Case.result,
            Case.version,
            Student.name,
            Student.matriculation_number,
            Offering.grading_scheme,
        )
        .join(Student, Student.id == Case.student_id)
        .join(Offering, Offering.id == Case.offering_id)
        .where(Case.id.in_(cases))
        .order_by(Case.id)
    )
    found = []
    memo: dict[Any, Any] = {}  # the tables found, shared by the cases (one lookup per kind)
    for row in rows:
        result = row.result or {}
        grade, scheme = result.get("grade"), result.get("scheme")
        entry: dict[str, Any] = {
            "case_id": row.id,
            "version": row.version,
            "student": row.name,
            "matriculation_number": row.matriculation_number,
            "grade": grade,
            "scheme": scheme or row.grading_scheme,
            "converted": None,
            "error": None,
            "percentile": None,
            "percentile_error": None,
            "percentile_missing": None,
            "band": None,
            "difference": None,
            "differs": False,
            "partner_table_id": None,
            "home_table_id": None,
            "tables": None,
        }
        if not grade or not scheme:
            entry["error"] = entry["percentile_error"] = (
                "no partner grade with its grading scheme is recorded"
            )
            found.append(entry)
            continue
        tables = tables_for_case(session, row.id, memo)
        by_formula, by_table, both, errors = side_by_side(str(grade), str(scheme), rounding, tables)
        entry["error"] = errors.get("bavarian")
        entry["percentile_error"] = errors.get("percentile")
        if by_formula is not None:
            entry["converted"] = by_formula.grade
        entry["tables"] = tables.to_dict()
        if not tables.known:
            entry["percentile_missing"] = (
                "both"
                if tables.partner is None and tables.home is None
                else "partner"
                if tables.partner is None
                else "home"
            )
        if by_table is not None:
            entry["percentile"] = by_table.grade
            details = by_table.percentile
            if details is not None:
                entry["band"] = {
                    "lower": str(details.band.lower),
                    "upper": str(details.band.upper),
                    "midpoint": str(details.midpoint),
                }
            entry["partner_table_id"] = by_table.parameters.get("partner_table_id")
            entry["home_table_id"] = by_table.parameters.get("home_table_id")
        if both is not None:
            entry["differs"] = both.differs
            entry["difference"] = None if both.difference is None else str(both.difference)
        found.append(entry)
    return found


def methods(cases: list[dict[str, Any]]) -> list[str]:
    """The conversions a whole cohort (as ``preview`` shows it) may be decided by: the
    modified Bavarian formula always (a grade for all covers a case it cannot convert), the
    percentile conversion only when it converts every case."""
    by_percentile = bool(cases) and all(c["percentile"] is not None for c in cases)
    return ["bavarian", "percentile"] if by_percentile else ["bavarian"]


def waiting_cohorts(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """The (course offering, target module) groups with cases in review that the actor
    decides: where a cohort decision could be taken."""
    require(actor, Action.DECIDE_COHORT)
    rows = session.execute(
        select(
            Offering.id,
            Institution.code,
            Offering.code,
            Offering.title,
            Offering.term,
            Module.code,
            func.count(Case.id),
        )
        .join(Offering, Offering.id == Case.offering_id)
        .join(Institution, Institution.id == Offering.institution_id)
        .join(case_targets, case_targets.c.case_id == Case.id)
        .join(Module, Module.id == case_targets.c.module_id)
        .where(
            Case.state.in_(get_procedure().sources_of(*COHORT_EVENTS)),
            Case.examiner_id == actor.id,
            case_scope(actor),
        )
        .group_by(
            Offering.id, Institution.code, Offering.code, Offering.title, Offering.term, Module.code
        )
        .order_by(Institution.code, Offering.code, Offering.term, Module.code)
    )
    return [
        {
            "offering_id": r[0],
            "partner": r[1],
            "course": r[2],
            "title": r[3],
            "term": r[4],
            "module": r[5],
            "waiting": r[6],
        }
        for r in rows
    ]
