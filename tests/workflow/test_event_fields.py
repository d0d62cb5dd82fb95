"""Event data is checked in ``fire`` against the fields the procedure declares, so every
interface (workflow call, CLI, API, pages, imports) refuses an unknown, ill-typed or missing
field with the same sentence, and nothing is written."""

from __future__ import annotations

import datetime as dt
import tomllib
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.procedure import DEFAULT_PROCEDURE, get_procedure, parse_procedure
from models import Case
from tests.factories import Office
from tests.workflow.refusals import case_in, events
from workflow.cases.engine import fire
from workflow.errors import ValidationFailed


@pytest.mark.parametrize(
    ("state", "event", "role", "data", "message"),
    [
        (
            "planned",
            "enrol",
            "clerk",
            {"bogus": "1"},
            "cannot enrol case {id}: it takes no field 'bogus'; enrol takes no data",
        ),
        (
            "enrolled",
            "pass_course",
            "clerk",
            {"date": "2026-01-15", "grade": "27", "decision": "x"},
            "it takes no field 'decision'; pass_course takes date (date), "
            "grade (text, required), scheme (text)",
        ),
        (
            "enrolled",
            "pass_course",
            "clerk",
            {"date": "15.01.2026", "grade": "27"},
            "date must be a date as YYYY-MM-DD, not '15.01.2026'",
        ),
        (
            "enrolled",
            "pass_course",
            "clerk",
            {"date": "2026-01-15", "grade": "27", "ects": "lots"},
            "ects must be a number such as 7.5, not 'lots'",
        ),
        (
            "enrolled",
            "pass_course",
            "clerk",
            {"date": "2026-01-15", "grade": "27", "eqf_level": "seven"},
            "eqf_level must be a whole number, not 'seven'",
        ),
        (
            "enrolled",
            "pass_course",
            "clerk",
            {"date": "2026-01-15", "grade": ["27"]},
            "grade must be text",
        ),
        ("enrolled", "pass_course", "clerk", {"grade": "27"}, "date is required"),
        ("enrolled", "pass_course", "clerk", {"date": "2026-01-15"}, "grade is required"),
        ("in_review", "request_info", "examiner", {}, "message is required"),
        ("in_review", "request_info", "examiner", {"message": "  "}, "message is required"),
        ("in_review", "recognize", "examiner", {"grade": "1.7"}, "modules is required"),
        (
            "in_review",
            "recognize",
            "examiner",
            {"modules": {"INF-ML": 1}},
            "modules must be a list of names",
        ),
        (
            "in_review",
            "reject",
            "examiner",
            {"reasons": "too different", "advice": "x"},
            "reasons must be a mapping of names to texts",
        ),
        ("in_review", "reject", "examiner", {"advice": "x"}, "reasons is required"),
    ],
)
def test_fire_refuses_a_field_the_event_does_not_take(
    session: Session,
    network: Office,
    state: str,
    event: str,
    role: str,
    data: dict[str, Any],
    message: str,
) -> None:
    case_id = case_in(session, network, state)
    actor = {"clerk": network.clerk, "examiner": network.examiner}[role]
    now = session.scalar(select(Case.updated_at).where(Case.id == case_id))
    assert now is not None
    before = events(session, case_id)
    with pytest.raises(ValidationFailed) as err:
        fire(session, case_id, event, actor=actor, now=now + dt.timedelta(hours=1), data=data)
    assert str(err.value).startswith(f"cannot {event} case {case_id}: ")
    assert message.format(id=case_id) in str(err.value)
    assert events(session, case_id) == before
    assert session.scalar(select(Case.state).where(Case.id == case_id)) == state


def test_a_number_in_a_text_field_is_kept_as_its_text(session: Session, network: Office) -> None:
    case_id = case_in(session, network, "enrolled")
    now = session.scalar(select(Case.updated_at).where(Case.id == case_id))
    assert now is not None
    fired = fire(
        session,
        case_id,
        "pass_course",
        actor=network.clerk,
        now=now + dt.timedelta(hours=1),
        data={"date": "2026-01-15", "grade": 27, "ects": 6},
    )
    assert fired.data["grade"] == "27"


def test_every_event_declares_its_fields_once() -> None:
    """The default procedure's fields, as the forms and refusals see them."""
    proc = get_procedure()
    assert proc.events["enrol"].takes == "no data"
    assert [f.name for f in proc.events["reject"].fields.values()] == ["reasons", "advice"]
    assert {f.type for e in proc.events.values() for f in e.fields.values()} == {
        "text",
        "number",
        "integer",
        "date",
        "list",
        "mapping",
    }


def test_a_field_only_some_roles_may_give_is_refused_to_the_others(
    session: Session, network: Office
) -> None:
    """``by``: an office may say that only the import gives a result's source."""
    raw = tomllib.loads(DEFAULT_PROCEDURE.read_text(encoding="utf-8"))
    pass_course = next(e for e in raw["events"] if e["name"] == "pass_course")
    pass_course["fields"]["source"] = {"type": "text", "by": ["import"]}
    office = parse_procedure(raw, "office.toml")
    case_id = case_in(session, network, "enrolled")
    now = session.scalar(select(Case.updated_at).where(Case.id == case_id))
    assert now is not None
    with pytest.raises(ValidationFailed, match="source is given by the import, not by the clerk"):
        fire(
            session,
            case_id,
            "pass_course",
            actor=network.clerk,
            now=now + dt.timedelta(hours=1),
            data={"date": "2026-01-15", "grade": "27", "source": "by hand"},
            procedure=office,
        )
    assert session.scalar(select(Case.state).where(Case.id == case_id)) == "enrolled"


def test_a_procedure_naming_an_unknown_guard_is_refused_by_fire(
    session: Session, network: Office
) -> None:
    """An office's procedure passes the config layer with any guard name; the engine names
    the file, the event and the guard the first time it is given the procedure."""
    from config.errors import ConfigurationError

    raw = tomllib.loads(DEFAULT_PROCEDURE.read_text(encoding="utf-8"))
    next(e for e in raw["events"] if e["name"] == "enrol")["guards"] = ["is_sunny"]
    office = parse_procedure(raw, "office.toml")
    case_id = case_in(session, network, "planned")
    now = session.scalar(select(Case.updated_at).where(Case.id == case_id))
    assert now is not None
    with pytest.raises(
        ConfigurationError, match=r"office\.toml: event enrol: guards names unknown"
    ):
        fire(
            session,
            case_id,
            "withdraw",
            actor=network.clerk,
            now=now + dt.timedelta(hours=1),
            procedure=office,
        )
    assert session.scalar(select(Case.state).where(Case.id == case_id)) == "planned"
