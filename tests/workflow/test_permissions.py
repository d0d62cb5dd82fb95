"""The permission table: one row per action, and refusals a person can act on."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from models import Role
from workflow.errors import Forbidden, NotFound
from workflow.policy.actors import Actor
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
