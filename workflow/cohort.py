"""A cohort decision: one decision for every waiting case of the same course offering and
target module, each with its own student's converted grade, all or none."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.settings import Settings
from models import Case, Institution, Module, Offering, Student, case_targets
from workflow.actors import Actor, case_scope
from workflow.engine import FiredEvent, fire_many
from workflow.errors import DomainError, NotFound, ValidationFailed
from workflow.grades import Rounding, convert

COHORT_EVENTS = ("recognize", "recognize_partially", "reject")


def waiting_cases(session: Session, *, offering_id: int, module_code: str,
                  actor: Actor) -> list[int]:
    """Cases in review for this offering with this target module that the actor decides."""
    return list(session.scalars(
        select(Case.id).join(case_targets, case_targets.c.case_id == Case.id)
        .join(Module, Module.id == case_targets.c.module_id)
        .where(Case.offering_id == offering_id, Module.code == module_code,
               Case.state == "in_review", Case.examiner_id == actor.id, case_scope(actor))
        .order_by(Case.id)))


def decide(session: Session, *, offering_id: int, module_code: str, event: str,
           data: dict[str, Any], actor: Actor, now: dt.datetime,
           channel: str = "api", settings: Settings | None = None) -> list[FiredEvent]:
    """Fire ``event`` on every waiting case at once; the grade, if not given, is each
    student's own result converted by the office's rules. One audit event per case."""
    if event not in COHORT_EVENTS:
        raise ValidationFailed(f"a cohort decision is one of {', '.join(COHORT_EVENTS)}, "
                               f"not {event!r}")
    cases = waiting_cases(session, offering_id=offering_id, module_code=module_code,
                          actor=actor)
    if not cases:
        raise NotFound(f"no case of course offering {offering_id} with target module "
                       f"{module_code} is waiting for your decision")
    return fire_many(session, cases, event, actor=actor, now=now,
                     data_for=lambda _row: dict(data), channel=channel, settings=settings)


def preview(session: Session, *, offering_id: int, module_code: str, actor: Actor,
            rounding: Rounding) -> list[dict[str, Any]]:
    """What a cohort decision would decide, before it is taken: each waiting case with its
    student, the partner's grade as printed and that grade converted by the office's rules
    (or why it cannot be converted: then the cohort is refused as a whole unless one grade
    is given for all)."""
    cases = waiting_cases(session, offering_id=offering_id, module_code=module_code,
                          actor=actor)
    if not cases:
        return []
    rows = session.execute(
        select(Case.id, Case.result, Case.version, Student.name,
               Student.matriculation_number, Offering.grading_scheme)
        .join(Student, Student.id == Case.student_id)
        .join(Offering, Offering.id == Case.offering_id)
        .where(Case.id.in_(cases)).order_by(Case.id))
    found = []
    for row in rows:
        result = row.result or {}
        grade, scheme = result.get("grade"), result.get("scheme")
        converted, error = None, None
        if not grade or not scheme:
            error = "no partner grade with its grading scheme is recorded"
        else:
            try:
                converted = convert(str(grade), str(scheme), rounding).grade
            except DomainError as exc:
                error = str(exc)
        found.append({"case_id": row.id, "version": row.version, "student": row.name,
                      "matriculation_number": row.matriculation_number, "grade": grade,
                      "scheme": scheme or row.grading_scheme, "converted": converted,
                      "error": error})
    return found


def waiting_cohorts(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """The (course offering, target module) groups with cases in review that the actor
    decides: where a cohort decision could be taken."""
    rows = session.execute(
        select(Offering.id, Institution.code, Offering.code, Offering.title, Offering.term,
               Module.code, func.count(Case.id))
        .join(Offering, Offering.id == Case.offering_id)
        .join(Institution, Institution.id == Offering.institution_id)
        .join(case_targets, case_targets.c.case_id == Case.id)
        .join(Module, Module.id == case_targets.c.module_id)
        .where(Case.state == "in_review", Case.examiner_id == actor.id, case_scope(actor))
        .group_by(Offering.id, Institution.code, Offering.code, Offering.title,
                  Offering.term, Module.code)
        .order_by(Institution.code, Offering.code, Offering.term, Module.code))
    return [{"offering_id": r[0], "partner": r[1], "course": r[2], "title": r[3],
             "term": r[4], "module": r[5], "waiting": r[6]} for r in rows]
