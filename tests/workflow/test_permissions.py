"""The permission table: one row per action, and refusals a person can act on."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from config.procedure import EventDef
from models import Role
from workflow.errors import Forbidden, NotFound
from workflow.policy.actors import Actor, check_may_fire
from workflow.policy.permissions import PERMISSIONS, Action, allowed, require


def test_every_action_has_one_row_naming_people() -> None:
    assert set(PERMISSIONS) == set(Action)
    for action, rule in PERMISSIONS.items():
        assert rule.roles, action
        assert rule.doing, action


def test_refusals_say_who_may() -> None:
    examiner = Actor(role=Role.EXAMINER, id=7, institution_id=1, programme_ids=frozenset({3}))
    with pytest.raises(Forbidden) as err:
        require(examiner, Action.MATCH_BY_HAND)
    assert str(err.value) == (
        "an examiner may not match a transcript result to a case by hand; "
        "it is for the clerk or admin"
    )
    assert not allowed(examiner, Action.ASSIGN_EXAMINER)
    assert allowed(examiner, Action.DECIDE_COHORT)
    assert allowed(None, Action.ADD_USER)  # the operator at the console


def test_a_case_out_of_sight_is_not_found_before_the_role_is_judged() -> None:
    student = Actor(role=Role.STUDENT, id=5, institution_id=1)
    theirs = SimpleNamespace(
        id=9, institution_id=1, student_id=6, programme_id=None, examiner_id=None
    )
    with pytest.raises(NotFound, match="case 9 not found"):
        require(student, Action.ASSIGN_EXAMINER, theirs)
    own = SimpleNamespace(
        id=10, institution_id=1, student_id=5, programme_id=None, examiner_id=None
    )
    with pytest.raises(Forbidden):
        require(student, Action.ASSIGN_EXAMINER, own)
    require(student, Action.SET_TARGETS, own)


def test_an_event_refused_to_a_role_names_it_with_its_article() -> None:
    """The engine's refusal of a role reads as English: "an examiner", "an admin", "a clerk"."""
    event = EventDef(
        name="provide_info",
        sources=("info_requested",),
        dest="in_review",
        actors=("student",),
        guards=(),
        notify=(),
        prerequisite="",
    )
    for role, words in (
        (Role.EXAMINER, "an examiner"),
        (Role.ADMIN, "an admin"),
        (Role.CLERK, "a clerk"),
        (Role.BOARD, "a board"),
    ):
        with pytest.raises(Forbidden) as err:
            check_may_fire(Actor(role=role, id=1, institution_id=1), event, "case 4")
        assert str(err.value) == (
            f"cannot provide_info case 4: {words} may not do this; it is for the student"
        )


def test_a_student_actor_is_built_one_way() -> None:
    assert Actor.student(5, 1) == Actor(
        role=Role.STUDENT, id=5, institution_id=1, label="student#5"
    )
    assert str(Actor.student(5, 1)) == "student#5"
