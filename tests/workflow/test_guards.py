"""Guard refusals: each says what to do, and nothing changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.procedure import get_procedure
from models import Case, HomeAchievement, Module, Offering, Role, case_targets
from tests.factories import Office, student_actor
from tests.workflow.refusals import case_in, events
from workflow.cases.engine import StaleVersion, fire
from workflow.errors import Forbidden, GuardFailed, IllegalTransition, ValidationFailed
from workflow.policy.actors import Actor

LATER = dt.datetime(2027, 1, 15, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("state", "event", "role", "data", "message"),
    [
        (
            "enrolled",
            "pass_course",
            "clerk",
            {"date": "2099-01-01", "grade": "27"},
            "lies in the future",
        ),
        (
            "course_passed",
            "receive_transcript",
            "clerk",
            {},
            "no transcript of records is attached",
        ),
        ("submitted", "start_review", "clerk", {}, "no examiner is assigned"),
        ("submitted", "start_review", "clerk", {"examiner": "clerk"}, "is not an active examiner"),
        (
            "in_review",
            "recognize",
            "examiner",
            {"modules": "NOPE", "grade": "1.7"},
            "unknown home module(s) NOPE",
        ),
        (
            "in_review",
            "recognize",
            "examiner",
            {"modules": "INF-ML", "grade": "1.5"},
            "the converted grade must be one of",
        ),
        (
            "in_review",
            "recognize",
            "examiner",
            {"modules": "INF-ML", "grade": "1.7", "ects": "4"},
            "recognition is per whole module",
        ),
        (
            "in_review",
            "reject",
            "examiner",
            {"reasons": {"colour": "x"}, "advice": "x"},
            "unknown criterion 'colour'",
        ),
        (
            "in_review",
            "recognize_partially",
            "examiner",
            {
                "modules": "INF-ML",
                "not_credited": "INF-ML",
                "grade": "2.0",
                "reasons": {"level": "EQF 5 < 6"},
                "advice": "x",
            },
            "cannot be both credited and not credited",
        ),
        ("rejected", "close", "clerk", {}, "the appeal window is open until"),
        ("planned", "lapse", "timer", {}, "has not passed yet"),
    ],
)
def test_guard_refusal_names_what_to_do(
    session: Session,
    network: Office,
    state: str,
    event: str,
    role: str,
    data: dict[str, Any],
    message: str,
) -> None:
    case_id = case_in(session, network, state)
    actor = {"clerk": network.clerk, "examiner": network.examiner}.get(role)
    if actor is None:
        actor = Actor.system(Role(role))
    now = session.scalar(select(Case.updated_at).where(Case.id == case_id))
    assert now is not None
    before = events(session, case_id)
    with pytest.raises(GuardFailed) as err:
        fire(session, case_id, event, actor=actor, now=now + dt.timedelta(hours=1), data=data)
    assert message in str(err.value)
    assert str(err.value).startswith(f"cannot {event} case {case_id}: ")
    assert events(session, case_id) == before


def test_submit_without_target_and_already_passed_at_home(
    session: Session,
    network: Office,
) -> None:
    case_id = case_in(session, network, "transcript_received")
    student = student_actor(session, case_id)
    module_id = session.scalar(select(Module.id).where(Module.code == "INF-ML"))
    session.add(
        HomeAchievement(student_id=student.id, module_id=module_id, passed_on=dt.date(2025, 2, 1))
    )
    session.flush()
    with pytest.raises(GuardFailed, match=r"already passed INF-ML \(passed 2025-02-01\)"):
        fire(session, case_id, "submit", actor=student, now=LATER)
    session.execute(case_targets.delete().where(case_targets.c.case_id == case_id))
    with pytest.raises(GuardFailed, match="no target module is set"):
        fire(session, case_id, "submit", actor=student, now=LATER)


def test_only_the_assigned_examiner_decides(session: Session, network: Office) -> None:
    case_id = case_in(session, network, "in_review")
    colleague = Actor(
        role=Role.EXAMINER,
        id=network.examiner.id + 1000,
        institution_id=network.home_id,
        programme_ids=network.examiner.programme_ids,
    )
    with pytest.raises(Forbidden, match="assigned to another examiner"):
        fire(
            session,
            case_id,
            "recognize",
            actor=colleague,
            now=LATER,
            data={"modules": "INF-ML", "grade": "1.7"},
        )


def test_cancelled_course_cannot_be_enrolled(session: Session, network: Office) -> None:
    case_id = case_in(session, network, "planned")
    offering_id = session.scalar(select(Case.offering_id).where(Case.id == case_id))
    offering = session.get(Offering, offering_id)
    assert offering is not None
    offering.status = "cancelled"
    session.flush()
    with pytest.raises(GuardFailed, match=r"is cancelled, not offered"):
        fire(session, case_id, "enrol", actor=network.clerk, now=LATER)


def test_unknown_event_and_illegal_event_messages(session: Session, network: Office) -> None:
    case_id = case_in(session, network, "course_passed")
    with pytest.raises(ValidationFailed, match="unknown event 'fly'; events are: enrol"):
        fire(session, case_id, "fly", actor=network.clerk, now=LATER)
    with pytest.raises(IllegalTransition) as err:
        fire(session, case_id, "submit", actor=student_actor(session, case_id), now=LATER)
    assert str(err.value) == (
        f"cannot submit case {case_id}: it is course_passed; a clerk (or the transcript "
        "import) must attach the transcript and record it as received first"
    )


def test_stale_version_is_a_conflict_naming_the_state(session: Session, network: Office) -> None:
    case_id = case_in(session, network, "enrolled")
    version = session.scalar(select(Case.version).where(Case.id == case_id))
    assert version is not None
    with pytest.raises(StaleVersion, match=r"it is now at version \d+ \(enrolled\)"):
        fire(
            session,
            case_id,
            "pass_course",
            actor=network.clerk,
            now=LATER,
            data={"date": "2026-12-01", "grade": "27"},
            expected_version=version - 1,
        )


def test_naive_now_is_refused(session: Session, network: Office) -> None:
    case_id = case_in(session, network, "planned")
    with pytest.raises(ValueError, match="timezone-aware"):
        fire(session, case_id, "enrol", actor=network.clerk, now=dt.datetime(2026, 1, 1))  # noqa: DTZ001  the point of the test


@pytest.mark.parametrize("event", list(get_procedure().events))
def test_each_prerequisite_names_who_acts_next(event: str) -> None:
    """What a refusal says must happen first names the roles the procedure lets fire that
    event (``actors``): "an examiner must start the review" was wrong, starting it is the
    clerk's step."""
    ev = get_procedure().events[event]
    said = ev.prerequisite
    for role in ev.actors:
        assert role in said, f"{event}: {said!r} does not name the {role} (actors {ev.actors})"
    others = {"clerk", "examiner", "board", "student"} - set(ev.actors)
    subject = said.split(" must ")[0]  # who must do it
    named = {role for role in others if role in subject}
    assert not named, f"{event}: {said!r} asks the {named}, who may not fire it"


def test_start_review_refusal_says_a_clerk_starts_it(session: Session, network: Office) -> None:
    case_id = case_in(session, network, "submitted")
    before = events(session, case_id)
    with pytest.raises(IllegalTransition) as err:
        fire(session, case_id, "recognize", actor=network.examiner, now=LATER, data={})
    assert str(err.value) == (
        f"cannot recognize case {case_id}: it is submitted; a clerk must assign an examiner "
        "and start the review first"
    )
    assert events(session, case_id) == before
