"""A cohort decision: one decision for every waiting case of the same course offering and
target module, each with its own student's converted grade, all or none."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Case, Module, case_targets
from workflow.actors import Actor, case_scope
from workflow.engine import FiredEvent, fire_many
from workflow.errors import NotFound, ValidationFailed

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
           channel: str = "api") -> list[FiredEvent]:
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
                     data_for=lambda _row: dict(data), channel=channel)
