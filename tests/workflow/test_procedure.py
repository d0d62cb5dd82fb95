"""The procedure definition: the default one loads, and every kind of mistake an office can
make when adapting it stops start-up with a sentence naming it."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.errors import ConfigurationError
from config.procedure import DEFAULT_PROCEDURE, load_procedure, parse_procedure
from config.settings import load_settings
from models import Case
from tests.factories import Office
from workflow.cases.casefile import open_case
from workflow.errors import GuardFailed

RAW = tomllib.loads(DEFAULT_PROCEDURE.read_text(encoding="utf-8"))


def changed(edit: Any) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    edit(raw)
    return raw


def event(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in raw["events"] if e["name"] == name)


def test_the_default_procedure_loads_into_one_machine() -> None:
    proc = load_procedure()
    assert proc.initial == "planned"
    assert len(proc.states) == 15
    assert len(proc.events) == 19
    assert set(proc.machine.events) == set(proc.events)
    assert {s.name for s in proc.states.values() if s.final} == {"closed", "withdrawn", "lapsed"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: r["states"].update({"limbo": {"label": {"en": "Limbo"}}}),
            "state limbo: label must be given in every language (label.en, label.de)",
        ),
        (
            lambda r: r["states"].update({"x" * 25: {}}),
            "must be a plain word (letters, digits, _) of at most 24 characters",
        ),
        (
            lambda r: event(r, "appeal")["fields"].update({"message": {"type": "essay"}}),
            "event appeal: field message: type 'essay' is not one of text, number",
        ),
        (
            lambda r: event(r, "appeal")["fields"].update(
                {"message": {"type": "text", "by": ["clerk"]}}
            ),
            "event appeal: field message: by names unknown 'clerk'; known: student",
        ),
        (
            lambda r: event(r, "enrol").update({"to": "nowhere"}),
            "event enrol names unknown state 'nowhere'",
        ),
        (
            lambda r: event(r, "retake").update({"actors": []}),
            "event retake has no actor: say who may fire it",
        ),
        (lambda r: event(r, "retake").update({"actors": ["dean"]}), "unknown 'dean'"),
        (
            lambda r: event(r, "submit").update({"guards": ["is sunny"]}),
            "event submit: guards: 'is sunny' is not a name",
        ),
        (
            lambda r: r.update({"events": [e for e in r["events"] if e["name"] != "appeal"]}),
            "unreachable state(s) from planned: appealed",
        ),
        (
            lambda r: r.update({"events": [e for e in r["events"] if "appealed" not in e["from"]]}),
            "state appealed is not final but has no way out",
        ),
        (
            lambda r: r["states"]["closed"].update({"deadline": "decision"}),
            "state closed is final and cannot have a deadline",
        ),
        (
            lambda r: r["states"]["submitted"].update({"deadline": "someday"}),
            "unknown deadline 'someday'",
        ),
        (lambda r: r["events"].append(dict(event(r, "enrol"))), "event enrol is defined twice"),
        (lambda r: event(r, "close").update({"from": ["closed"]}), "leaves final state closed"),
        (lambda r: r.update({"initial": "dreaming"}), "initial state 'dreaming'"),
        (
            lambda r: r["states"]["submitted"].update({"allows_new_case": True}),
            "state submitted: allows_new_case is for final states",
        ),
    ],
)
def test_a_wrong_definition_is_named(edit: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        parse_procedure(changed(edit), "office.toml")
    assert str(err.value).startswith("procedure office.toml: ")
    assert message in str(err.value)


def test_an_adapted_procedure_is_used(tmp_path: Path) -> None:
    text = DEFAULT_PROCEDURE.read_text(encoding="utf-8").replace(
        'actors = ["student"]\nnotify = ["student", "clerk"]\nprerequisite = "the student must '
        'withdraw first"',
        'actors = ["student", "clerk"]\nnotify = ["student", "clerk"]\n'
        'prerequisite = "the student must withdraw first"',
    )
    assert text != DEFAULT_PROCEDURE.read_text(encoding="utf-8")
    path = tmp_path / "office.toml"
    path.write_text(text, encoding="utf-8")
    proc = load_procedure(load_settings(procedure_file=path).procedure_file)
    assert proc.events["withdraw"].actors == ("student", "clerk")
    broken = tmp_path / "broken.toml"
    broken.write_text("initial = ", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"broken\.toml: not valid TOML"):
        load_procedure(broken)
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_procedure(tmp_path / "missing.toml")


def test_diagrams_name_every_transition() -> None:
    proc = load_procedure()
    mermaid, dot = proc.mermaid(), proc.dot()
    for ev in proc.events.values():
        for src in ev.sources:
            assert f"{src} --> {ev.dest}: {ev.name}" in mermaid
            assert f'{src} -> {ev.dest} [label="{ev.name}"];' in dot


def test_a_guard_the_engine_does_not_know_is_named_before_a_case_is_touched() -> None:
    """The config layer knows guard names only as names; the workflow's one registry
    (``guards.GUARDS``) checks them when the engine first takes the procedure."""
    from workflow.cases.guards import GUARDS, checked

    proc = parse_procedure(
        changed(lambda r: event(r, "submit").update({"guards": ["is_sunny"]})), "office.toml"
    )
    with pytest.raises(ConfigurationError) as err:
        checked(proc)
    assert str(err.value).startswith(
        "procedure office.toml: event submit: guards names unknown 'is_sunny'; known: "
    )
    default = load_procedure()
    assert checked(default) is default
    assert {g for e in default.events.values() for g in e.guards} == set(GUARDS)


def test_a_case_ended_without_a_decision_does_not_block_a_new_one(
    session: Session, network: Office
) -> None:
    """Which final states leave the student free to open the same course again is the
    procedure's ``allows_new_case``, not a list in the code."""
    from tests.workflow.refusals import case_in

    assert load_procedure().allowing_new_case() == {"withdrawn", "lapsed"}
    case_id = case_in(session, network, "withdrawn")
    student_id, offering_id, now = session.execute(
        select(Case.student_id, Case.offering_id, Case.updated_at).where(Case.id == case_id)
    ).one()
    strict = parse_procedure(
        changed(lambda r: r["states"]["withdrawn"].pop("allows_new_case")), "office.toml"
    )
    later = now + dt.timedelta(hours=1)
    with pytest.raises(GuardFailed, match=f"already has case {case_id} for this course offering"):
        open_case(
            session,
            student_id=student_id,
            offering_id=offering_id,
            actor=network.clerk,
            now=later,
            procedure=strict,
        )
    fired = open_case(
        session, student_id=student_id, offering_id=offering_id, actor=network.clerk, now=later
    )
    assert fired.case_id != case_id


def test_the_deciding_events_are_those_whose_guards_write_the_decision() -> None:
    """Precedents are recorded for the events a guard of ``DECIDING_GUARDS`` checks, so an
    office's own deciding event (here: the board recognising in part) records them too."""
    from workflow.cases.guards import decision_events

    assert decision_events(load_procedure()) == {
        "recognize",
        "recognize_partially",
        "reject",
        "grant_appeal",
    }
    office = parse_procedure(
        changed(
            lambda r: event(r, "dismiss_appeal").update(
                {"guards": ["reasons_given", "partial_recognition_data"]}
            )
        ),
        "office.toml",
    )
    assert "dismiss_appeal" in decision_events(office)
