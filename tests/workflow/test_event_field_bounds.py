"""Every event field of the procedure is bounded in type and size (``max_length``,
``max_items``): a wrong type, an oversize or deeply nested value is refused by ``fire`` with a
sentence naming the event and the field, and nothing reaches the append-only audit trail
(an 8 MB ``scheme`` or a 900-deep list once made a case's history unreadable for ever)."""

from __future__ import annotations

import datetime as dt
import tomllib
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.errors import ConfigurationError
from config.procedure import DEFAULT_PROCEDURE, FieldDef, get_procedure, parse_procedure
from models import Case
from tests.factories import Cast, Office
from tests.workflow.refusals import case_in, events
from workflow.cases.engine import fire
from workflow.errors import ValidationFailed


def _deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


# A value of another type, for each type (the refusal names the expected one).
WRONG_TYPE: dict[str, list[Any]] = {
    "text": [{"a": "b"}, ["x"], True],
    "number": [{"n": 1}, ["1"], True],
    "integer": [["1"], {"i": 1}, "1.5"],
    "date": [{"d": 1}, ["2026-01-01"], 20260101],
    "list": [{"a": "b"}, [["x"]], [1]],
    "mapping": [["a"], {"a": ["b"]}, {"a": {"b": "c"}}],
}


def _oversize(spec: FieldDef) -> list[Any]:
    n, items = spec.max_length, spec.max_items
    if spec.type == "list":
        return [["x"] * (items + 1), ["x" * (n + 1)], "x" * (n * items + 1)]
    if spec.type == "mapping":
        return [
            {f"k{i}": "x" for i in range(items + 1)},
            {"k": "x" * (n + 1)},
            {"k" * 65: "x"},
        ]
    if spec.type == "integer":
        return ["1" * (n + 1), int("1" * (n + 1))]
    if spec.type == "date":
        return [" " * n + "2026-01-01"]
    return ["1" * (n + 1)]


def _fields() -> list[Any]:
    proc = get_procedure()
    return [
        pytest.param(ev.name, spec.name, id=f"{ev.name}-{spec.name}")
        for ev in proc.events.values()
        for spec in ev.fields.values()
    ]


def test_every_field_of_the_procedure_is_bounded() -> None:
    """No field may grow without limit: each has a length, lists and mappings a count."""
    proc = get_procedure()
    fields = [f for ev in proc.events.values() for f in ev.fields.values()]
    assert fields
    for spec in fields:
        assert 1 <= spec.max_length <= 10_000, spec
        assert 1 <= spec.max_items <= 50, spec
    assert proc.events["pass_course"].fields["scheme"].max_length == 40
    assert proc.events["pass_course"].fields["language"].max_length == 35


@pytest.mark.parametrize(("event", "name"), _fields())
def test_fire_refuses_a_wrong_type_or_oversize_value_of_every_field(
    session: Session, network: Office, event: str, name: str
) -> None:
    proc = get_procedure()
    ev = proc.events[event]
    spec = ev.fields[name]
    state = ev.sources[0]
    case_id = case_in(session, network, state)
    who = Cast(session, case_id, clerk=network.clerk, examiner=network.examiner)(spec.by[0])
    now = session.scalar(select(Case.updated_at).where(Case.id == case_id))
    assert now is not None
    before = events(session, case_id)
    for value in [*WRONG_TYPE[spec.type], _deep(900), *_oversize(spec)]:
        with pytest.raises(ValidationFailed) as err:
            fire(
                session,
                case_id,
                event,
                actor=who,
                now=now + dt.timedelta(hours=1),
                data={name: value},
            )
        message = str(err.value)
        assert message.startswith(f"cannot {event} case {case_id}: {name} "), message
        assert len(message) < 200, message  # the refusal does not echo the value back
    assert events(session, case_id) == before
    assert session.scalar(select(Case.state).where(Case.id == case_id)) == state


def test_an_8_mb_scheme_names_its_size(session: Session, network: Office) -> None:
    case_id = case_in(session, network, "enrolled")
    now = session.scalar(select(Case.updated_at).where(Case.id == case_id))
    assert now is not None
    with pytest.raises(ValidationFailed) as err:
        fire(
            session,
            case_id,
            "pass_course",
            actor=network.clerk,
            now=now + dt.timedelta(hours=1),
            data={"date": "2026-01-15", "grade": "27", "scheme": "x" * 8 * 1024 * 1024},
        )
    assert str(err.value) == (
        f"cannot pass_course case {case_id}: scheme has 8388608 characters; it may have at most 40"
    )
    assert events(session, case_id) == 1 + 1  # opened, enrolled: nothing more


def test_values_within_the_bounds_are_taken(session: Session, network: Office) -> None:
    case_id = case_in(session, network, "enrolled")
    now = session.scalar(select(Case.updated_at).where(Case.id == case_id))
    assert now is not None
    fired = fire(
        session,
        case_id,
        "pass_course",
        actor=network.clerk,
        now=now + dt.timedelta(hours=1),
        data={"date": "2026-01-15", "grade": "27", "scheme": "it", "language": "it-IT"},
    )
    assert fired.data["language"] == "it-IT"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "text", "max_length": 0}, "max_length must be a whole number from 1 to 100000"),
        (
            {"type": "text", "max_length": 10**9},
            "max_length must be a whole number from 1 to 100000",
        ),
        ({"type": "text", "max_items": 3}, "max_items is for list and mapping fields, not text"),
        ({"type": "list", "max_items": "many"}, "max_items must be a whole number from 1 to 1000"),
    ],
)
def test_a_procedure_with_a_bad_bound_is_refused_at_load(
    spec: dict[str, Any], message: str
) -> None:
    raw = tomllib.loads(DEFAULT_PROCEDURE.read_text(encoding="utf-8"))
    next(e for e in raw["events"] if e["name"] == "pass_course")["fields"]["scheme"] = spec
    with pytest.raises(ConfigurationError) as err:
        parse_procedure(raw, "office.toml")
    assert "office.toml: event pass_course: field scheme: " + message in str(err.value)


def test_an_office_may_tighten_a_bound(session: Session, network: Office) -> None:
    raw = tomllib.loads(DEFAULT_PROCEDURE.read_text(encoding="utf-8"))
    pass_course = next(e for e in raw["events"] if e["name"] == "pass_course")
    pass_course["fields"]["grade"] = {"type": "text", "required": True, "max_length": 2}
    office = parse_procedure(raw, "office.toml")
    case_id = case_in(session, network, "enrolled")
    now = session.scalar(select(Case.updated_at).where(Case.id == case_id))
    assert now is not None
    with pytest.raises(ValidationFailed, match="grade has 3 characters; it may have at most 2"):
        fire(
            session,
            case_id,
            "pass_course",
            actor=network.clerk,
            now=now + dt.timedelta(hours=1),
            data={"date": "2026-01-15", "grade": "100"},
            procedure=office,
        )


def test_the_audit_trail_takes_no_event_larger_than_its_cap(
    session: Session, network: Office
) -> None:
    """The last line before the append-only trail: even an office's widest bounds (here a
    field of its own: a mapping of up to 1,000 texts of 100,000 characters) cannot put more
    than ``MAX_EVENT_DATA`` into one event."""
    from workflow.cases.engine import MAX_EVENT_DATA

    raw = tomllib.loads(DEFAULT_PROCEDURE.read_text(encoding="utf-8"))
    enrol = next(e for e in raw["events"] if e["name"] == "enrol")
    enrol["fields"] = {
        "notes": {"type": "mapping", "max_length": 100_000, "max_items": 1000},
    }
    office = parse_procedure(raw, "office.toml")
    case_id = case_in(session, network, "planned")
    now = session.scalar(select(Case.updated_at).where(Case.id == case_id))
    assert now is not None
    before = events(session, case_id)
    notes = {f"n{i}": "x" * 100_000 for i in range(3)}
    assert len(notes) * 100_000 > MAX_EVENT_DATA
    with pytest.raises(ValidationFailed) as err:
        fire(
            session,
            case_id,
            "enrol",
            actor=network.clerk,
            now=now + dt.timedelta(hours=1),
            data={"notes": notes},
            procedure=office,
        )
    assert str(err.value) == (
        f"cannot enrol case {case_id}: its data is too large or too deeply nested for the "
        f"audit trail (at most {MAX_EVENT_DATA} characters)"
    )
    assert events(session, case_id) == before
    assert session.scalar(select(Case.state).where(Case.id == case_id)) == "planned"
