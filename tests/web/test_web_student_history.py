"""What a student sees of their case's history and of their case list is decided by one policy
(``workflow.policy.disclosure``), the same for the API, the pages and the CLI: no examiner's
identity, no office actor id, no internal event data, no chain hashes."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import Engine, select
from web_harness import client, student_login

from models import User
from models.db import session_factory

NOW_STATES = ("in_review", "rejected", "appealed", "closed")


def _office(engine: Engine, world: Any) -> tuple[set[int], list[str]]:
    """The office's user ids, and the examiner's names (user name and display name)."""
    with session_factory(engine)() as s:
        ids = set(s.scalars(select(User.id)))
        examiner = s.get(User, world.net.examiner.id)
        assert examiner is not None
        return ids, [examiner.username, examiner.display_name]


def _leaks(text: str, names: list[str]) -> list[str]:
    """The examiner's display name (the user name "examiner" is also a role's name), an
    examiner id or a chain hash in a response."""
    found = [n for n in names[1:] if n in text]
    found += [p for p in (r'"examiner_id":\s*\d', r'"hash":\s*"') if re.search(p, text)]
    return found


def test_the_office_sees_the_whole_trail(clerk_api: Any, world: Any, engine: Engine) -> None:
    """The control: the trail does hold what the student must not see."""
    ids, _ = _office(engine, world)
    history = clerk_api.get(f"/api/v1/cases/{world.cases['closed']}/history").json()
    assert any(e["event"] == "assign_examiner" and e["data"].get("examiner_id") for e in history)
    assert {e["actor_id"] for e in history if e["actor_role"] != "student"} & ids
    assert all(e["hash"] for e in history)
    listed = clerk_api.get("/api/v1/cases", params={"state": "closed"}).json()["items"]
    assert listed[0]["examiner_id"] == world.net.examiner.id


def test_no_examiner_or_office_actor_reaches_a_student(
    app: Any, engine: Engine, world: Any, cli_in_process: Any
) -> None:
    from tests.web.conftest import NOW

    ids, names = _office(engine, world)
    for state in NOW_STATES:
        case_id = world.cases[state]
        student_id = world.students[case_id]
        with client(app) as c:
            student_login(c, engine, student_id, NOW)
            r = c.get(f"/api/v1/cases/{case_id}/history")
            assert r.status_code == 200
            history = r.json()
            assert history
            assert any(e["event"] == "assign_examiner" for e in history)
            for e in history:
                assert e["hash"] is None
                assert set(e["data"]) <= {"message"}, e
                if e["actor_role"] != "student":
                    assert e["actor_id"] is None, e
                else:
                    assert e["actor_id"] == student_id
            listed = c.get("/api/v1/cases").json()["items"]
            assert [i["id"] for i in listed] == [case_id]
            assert listed[0]["examiner_id"] is None
            assert listed[0]["examiner"] is None
            probe = c.get("/api/v1/cases", params={"examiner": world.net.examiner.id})
            assert probe.status_code == 403
            for text in (
                r.text,
                c.get("/api/v1/cases").text,
                c.get(f"/api/v1/cases/{case_id}").text,
                c.get(f"/cases/{case_id}").text,
                c.get("/cases").text,
            ):
                assert not _leaks(text, names), (state, _leaks(text, names))
        cli = cli_in_process("case", "history", str(case_id), "--actor", "student", "--json")
        assert cli.exit_code == 0, cli.output
        rows = json.loads(cli.output)
        assert all(e["actor_id"] in (None, student_id) for e in rows)
        assert not _leaks(cli.output, names)
        cli_list = cli_in_process("case", "list", "--actor", f"student#{student_id}", "--json")
        assert cli_list.exit_code == 0, cli_list.output
        assert not _leaks(cli_list.output, names)
    assert ids  # the office exists
