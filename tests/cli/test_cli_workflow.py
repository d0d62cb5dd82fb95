"""The CLI end to end, as an office would use it on a bare machine: set up, import, open a
case, move it through the lifecycle, read it back; failures are one line on stderr."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.factories import CaseFactory, OfferingFactory, musterstadt

CATALOG = """institution,code,term,title,ects,language,eqf_level,learning_outcomes,\
assessment_type,participation_mode,quality_assurance,start_date,end_date,exam_date,grading_scheme
unitol.it,IT-ML,2026-03,Machine Learning,6.0,en,7,Train and evaluate models,written exam,online,\
ANVUR,2026-03-01,2026-06-30,2026-06-20,it
"""
MODULES = """institution,programme,programme_title,code,title,ects,regulation_version
uni-x.de,INF-MSC,Informatik (M.Sc.),ML,Maschinelles Lernen,6,PO 2023
"""


def test_a_case_from_catalogue_to_closed(cli: Callable[..., Any], tmp_path: Path) -> None:
    out = cli("db", "upgrade").out
    assert "migrated from empty" in out
    cli(
        "institution",
        "add",
        "uni-x.de",
        "--name",
        "Universität X",
        "--country",
        "DE",
        "--kind",
        "home",
    )
    cli("institution", "add", "unitol.it", "--name", "UniTol", "--country", "IT")
    (tmp_path / "catalog.csv").write_text(CATALOG, encoding="utf-8")
    (tmp_path / "modules.csv").write_text(MODULES, encoding="utf-8")
    assert "1 created, 0 updated" in cli("catalog", "import", "catalog.csv").out
    assert "0 created, 1 updated" in cli("catalog", "import", "catalog.csv").out
    cli("modules", "import", "modules.csv")
    cli("user", "add", "clara", "--role", "clerk", "--institution", "uni-x.de")
    cli(
        "user",
        "add",
        "erik",
        "--role",
        "examiner",
        "--institution",
        "uni-x.de",
        "--programme",
        "INF-MSC",
    )
    opened = cli(
        "case",
        "open",
        "--student",
        "123456",
        "--name",
        "Ada Lovelace",
        "--email",
        "ada@example.org",
        "--course",
        "IT-ML",
        "--target",
        "ML",
        "--actor",
        "clara",
        "--json",
    ).json()
    case = str(opened["id"])
    assert opened["state"] == "planned"
    cli("case", "fire", case, "enrol", "--actor", "clara")
    cli(
        "case",
        "fire",
        case,
        "pass_course",
        "--actor",
        "clara",
        "--data",
        "grade=27",
        "--data",
        "date=2026-06-20",
        "--data",
        "scheme=it",
    )
    (tmp_path / "tor.pdf").write_bytes(b"%PDF-1.4 transcript")
    cli("case", "attach", case, "tor.pdf", "--actor", "clara")
    cli("case", "fire", case, "receive_transcript", "--actor", "clara")
    cli("case", "fire", case, "submit", "--actor", "student")
    cli("case", "assign", case, "erik", "--actor", "clara")
    cli("case", "fire", case, "start_review", "--actor", "clara")
    fired = cli(
        "case",
        "fire",
        case,
        "recognize",
        "--actor",
        "erik",
        "--data",
        "modules=ML",
        "--data",
        "grade=1.7",
        "--data",
        "ects=6",
        "--json",
    ).json()
    assert fired["to"] == "recognized"
    assert fired["due_kind"] == "appeal_window"
    # A recognition is final only when its appeal window ends, or when the student waives.
    early = cli("case", "fire", case, "close", "--actor", "clara", check=False)
    assert early.code == 1
    assert "the appeal window is open until" in early.err
    cli("case", "fire", case, "waive_appeal", "--actor", "student")

    shown = cli("case", "show", case, "--json").json()
    assert shown["state"] == "closed"
    assert shown["decision"]["grade"] == "1.7"
    assert shown["decision"]["ects"] == "6.0"
    assert shown["result"]["grade"] == "27"
    assert shown["next_events"] == []
    history = cli("case", "history", case, "--json").json()
    assert [h["event"] for h in history] == [
        "open",
        "enrol",
        "pass_course",
        "attach_document",
        "receive_transcript",
        "submit",
        "assign_examiner",
        "start_review",
        "recognize",
        "waive_appeal",
    ]
    assert "Ada" not in json.dumps([h["data"] for h in history])  # ids, not names
    listed = cli("case", "list", "--state", "closed", "--json").json()
    assert [c["id"] for c in listed] == [opened["id"]]
    assert "audit trail intact: 10 events in 1 cases" in cli("audit", "verify").out
    table = cli("case", "show", case).out
    assert "Ada Lovelace" in table
    assert "Closed" in table


def test_failures_are_one_clear_line(cli: Callable[..., Any], cli_db: Any) -> None:
    with cli_db():
        musterstadt()
        case = str(CaseFactory(state="submitted").id)
    wrong = cli("case", "fire", case, "enrol", "--actor", "clerk", check=False)
    assert wrong.code == 1
    assert wrong.err.strip().splitlines() == [
        f"error: cannot enrol case {case}: it is submitted; enrol is no longer possible "
        "(possible now: start_review, withdraw)"
    ]
    missing = cli("case", "show", "99999", check=False)
    assert (missing.code, missing.err.strip()) == (1, "error: case 99999 not found")
    anon = cli("case", "fire", case, "start_review", check=False)
    assert anon.err.strip() == "error: say who acts: --actor USERNAME (or set RECOG_ACTOR)"
    role = cli("case", "fire", case, "start_review", "--actor", "student", check=False)
    assert "a student may not do this; it is for the clerk" in role.err
    bad = cli(
        "case", "fire", case, "start_review", "--actor", "clerk", "--data", "oops", check=False
    )
    assert bad.err.strip() == "error: --data 'oops': expected key=value"


def test_read_commands_take_json(cli: Callable[..., Any], cli_db: Any) -> None:
    states = ["planned", "submitted", "in_review", "recognized"]
    with cli_db():
        musterstadt()
        for state in states:  # on last term's courses: the open ones are overdue by now
            CaseFactory(state=state, offering=OfferingFactory(past=True))
        OfferingFactory.create_batch(2)  # courses without cases are listed too
    overdue = cli("case", "list", "--overdue", "--json").json()
    assert overdue
    assert all(c["overdue_days"] > 0 for c in overdue)
    assert cli("institution", "list", "--json").json()[0]["kind"] == "home"
    assert len(cli("catalog", "list", "--json").json()) == len(states) + 2
    workflow = cli("workflow", "show", "--json").json()
    assert workflow["initial"] == "planned"
    assert {e["name"] for e in workflow["events"]} >= {"submit", "appeal", "lapse"}
    mine = cli("case", "list", "--actor", "examiner", "--json", "--limit", "1000").json()
    assert len(mine) == len(states)  # every case is in the examiner's programme


def test_workflow_show_prints_mermaid_and_dot(cli: Callable[..., Any]) -> None:
    mermaid = cli("workflow", "show").out
    assert mermaid.startswith("stateDiagram-v2")
    assert "in_review --> info_requested: request_info" in mermaid
    dot = cli("workflow", "show", "--format", "dot").out
    assert dot.startswith("digraph recog {")
    assert 'submitted -> in_review [label="start_review"];' in dot


def test_up_demo_seeds_every_state_once(cli: Callable[..., Any]) -> None:
    first = cli("up", "--demo", "--once").out
    assert "demo: seeded 50 cases" in first
    for state in ("planned", "info_requested", "appealed", "lapsed", "withdrawn"):
        assert state in first
    again = cli("up", "--demo", "--once").out
    assert "has data already" in again


def test_schema_missing_and_bad_setting(cli: Callable[..., Any]) -> None:
    fresh = cli("case", "list", check=False)
    assert fresh.code == 1
    assert "run: recog db upgrade" in fresh.err
    bad = cli("case", "list", check=False, RECOG_TIMEZONE="Mars/Base")
    assert bad.code == 1
    assert "RECOG_TIMEZONE: unknown time zone 'Mars/Base'" in bad.err


def test_fire_refuses_an_unknown_field_and_writes_nothing(
    cli: Callable[..., Any], cli_db: Any
) -> None:
    with cli_db():
        musterstadt()
        CaseFactory(state="planned", offering=OfferingFactory(upcoming=True))
    case = cli("case", "list", "--state", "planned", "--json").json()[0]
    before = cli("case", "history", str(case["id"]), "--json").json()
    refused = cli(
        "case",
        "fire",
        str(case["id"]),
        "enrol",
        "--data",
        "bogus=1",
        "--actor",
        "clerk",
        check=False,
    )
    assert refused.code != 0
    assert f"cannot enrol case {case['id']}: it takes no field 'bogus'" in refused.err
    assert cli("case", "history", str(case["id"]), "--json").json() == before
