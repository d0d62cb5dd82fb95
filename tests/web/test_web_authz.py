"""The authorization matrix, generated from actors x cases in every state x events and the
permission table's actions, over the API, the pages and the CLI; CSRF; no change through GET.
Nothing a refusal touches may change."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from web_harness import api_token, client, login, student_login

from config.procedure import get_procedure
from models import Case, CaseEvent
from models.db import session_factory
from tests.factories import MINIMAL_PDF
from web.problems import status_of
from workflow.policy.actors import Actor, acting_role, may_see
from workflow.policy.permissions import Action, allowed

ACTORS = ("clerk", "admin", "examiner", "board", "outsider", "clerk_b", "student")
FORM_EVENT = re.compile(r'name="event" value="([a-z_]+)"')


def snapshot(engine: Engine) -> dict[int, tuple[str, int, int]]:
    """Each case's state, version and number of audit events."""
    with session_factory(engine)() as s:
        counts = {
            r[0]: r[1]
            for r in s.execute(select(CaseEvent.case_id, func.count()).group_by(CaseEvent.case_id))
        }
        return {
            r.id: (r.state, r.version, counts.get(r.id, 0))
            for r in s.execute(select(Case.id, Case.state, Case.version))
        }


def actor_of(world: Any, label: str, case_id: int, student_case: int) -> Actor:
    if label == "student":
        return Actor.student(world.students[student_case], world.net.home_id)
    net = world.other if label == "clerk_b" else world.net
    return {
        "clerk": net.clerk,
        "clerk_b": net.clerk,
        "admin": net.admin,
        "examiner": net.examiner,
        "board": net.board,
        "outsider": world.outsider,
    }[label]


Recog = Callable[..., tuple[int, int | None]]


@pytest.fixture
def recog(cli_in_process: Callable[..., Any]) -> Recog:
    """The ``recog`` CLI in this process, on the world's database at the tests' moment.
    Returns (the HTTP status the API gives the same refusal, the CLI's exit status), or
    (200, 0) when the command succeeded; the refusal's class decides both, through the one
    mapping each interface uses."""
    import cli.context as ctx

    def run(*args: str) -> tuple[int, int | None]:
        exc = cli_in_process(*args).exception
        if exc is None:
            return 200, 0
        if isinstance(exc, SystemExit):
            return 0, int(exc.code or 0)
        return status_of(exc)[0], ctx.exit_status(exc)

    return run


def cli_actor(world: Any, label: str, student_case: int) -> str:
    if label == "student":
        return f"student#{world.students[student_case]}"
    return str(world.users[label])


def case_row(engine: Engine, case_id: int) -> Any:
    with session_factory(engine)() as s:
        return s.execute(
            select(
                Case.id,
                Case.institution_id,
                Case.student_id,
                Case.programme_id,
                Case.examiner_id,
                Case.state,
            ).where(Case.id == case_id)
        ).one()


@pytest.mark.slow
def test_matrix_roles_states_events(
    app: Any, engine: Engine, world: Any, recog: Recog, tmp_path: Path
) -> None:
    """Every actor x every case x every event through the API and the CLI, every case page,
    and the case actions of the permission table through both.

    Expected: invisible case -> 404 on every route; visible but the event impossible in the
    state -> 409; visible, possible, wrong role -> 403 (the CLI exits with 3). Events and
    actions the actor may do are not done here (they would change the case) but events must
    be offered on the page, and nothing else may be offered."""
    from conftest import NOW

    proc = get_procedure()
    before = snapshot(engine)
    student_case = world.cases["info_requested"]  # "student" is this case's student
    all_cases = [*world.cases.values(), world.case_b]
    clients = {}
    for label in ACTORS:
        c = client(app)
        if label == "student":
            c.csrf = student_login(c, engine, world.students[student_case], NOW)
        else:
            c.csrf = login(c, world.users[label])
        clients[label] = c
    tokens = {
        label: api_token(engine, world.users[label], NOW) for label in ACTORS if label != "student"
    }
    checked = 0
    for label in ACTORS:
        c = clients[label]
        api = (
            {"X-CSRF-Token": c.csrf}
            if label == "student"
            else {"Authorization": f"Bearer {tokens[label]}"}
        )
        who = cli_actor(world, label, student_case)
        for case_id in all_cases:
            row = case_row(engine, case_id)
            actor = actor_of(world, label, case_id, student_case)
            visible = may_see(actor, row)
            page = c.get(f"/cases/{case_id}")
            assert page.status_code == (200 if visible else 404), (label, case_id)
            offered = set(FORM_EVENT.findall(page.text)) if visible else set()
            for name, ev in proc.events.items():
                if not visible:
                    expected = {404}
                elif row.state not in ev.sources:
                    expected = {409}
                elif acting_role(actor, ev) is None:
                    expected = {403}
                else:
                    assert (
                        name in offered
                        or "assigned_examiner" in ev.guards
                        or any(
                            g in ev.guards
                            for g in (
                                "inside_appeal_window",
                                "appeal_window_over",
                                "deadline_passed",
                            )
                        )
                    ), (label, name, row.state)
                    continue
                r = c.post(
                    f"/api/v1/cases/{case_id}/events",
                    headers=api,
                    json={
                        "event": name,
                        "data": {"message": "x"} if "message_given" in ev.guards else {},
                    },
                )
                assert r.status_code in expected, (label, case_id, row.state, name, r.text)
                status, exit_status = recog(
                    "case", "fire", str(case_id), name, "--actor", who, "--data", "message=x"
                )
                assert status in expected, ("cli", label, case_id, row.state, name)
                assert exit_status == (3 if status == 403 else 1), ("cli", label, name)
                assert name not in offered, (label, name, row.state)
                checked += 1
            pdf = tmp_path / "a.pdf"
            pdf.write_bytes(MINIMAL_PDF)
            case_actions: list[tuple[Action, str, str, dict[str, Any], tuple[str, ...]]] = [
                (
                    Action.ASSIGN_EXAMINER,
                    "PUT",
                    "examiner",
                    {"json": {"username": "examiner"}},
                    ("assign", str(case_id), "examiner"),
                ),
                (
                    Action.SET_TARGETS,
                    "PUT",
                    "targets",
                    {"json": {"modules": ["INF-ML"]}},
                    ("target", str(case_id), "INF-ML"),
                ),
                (
                    Action.ATTACH_DOCUMENT,
                    "POST",
                    "documents",
                    {"files": {"file": ("a.pdf", MINIMAL_PDF, "application/pdf")}},
                    ("attach", str(case_id), str(pdf)),
                ),
            ]
            for action, method, route, body, cli_args in case_actions:
                if visible and allowed(actor, action):
                    continue
                expected_status = 403 if visible else 404
                r = c.request(method, f"/api/v1/cases/{case_id}/{route}", headers=api, **body)
                assert r.status_code == expected_status, (label, case_id, action, r.text)
                status, exit_status = recog("case", *cli_args, "--actor", who)
                assert (status, exit_status) == (
                    expected_status,
                    3 if visible else 1,
                ), ("cli", label, case_id, action)
                checked += 1
            if not visible:
                for cli_args in (("show",), ("history",), ("export",)):
                    status, _ = recog("case", *cli_args, str(case_id), "--actor", who)
                    assert status == 404, ("cli", label, case_id, cli_args)
            if not visible:
                for path in (
                    f"/api/v1/cases/{case_id}",
                    f"/api/v1/cases/{case_id}/status",
                    f"/api/v1/cases/{case_id}/history",
                    f"/api/v1/cases/{case_id}/documents",
                    f"/api/v1/cases/{case_id}/documents/1",
                ):
                    assert c.get(path, headers=api).status_code == 404, (label, path)
                for path in (f"/cases/{case_id}/events", f"/cases/{case_id}/status-link"):
                    assert (
                        c.post(path, data={"csrf": c.csrf, "event": "enrol"}).status_code == 404
                    ), (label, path)
                assert c.get(f"/cases/{case_id}/documents/1").status_code == 404
    for c in clients.values():
        c.close()
    assert checked > 500
    assert snapshot(engine) == before  # nothing a refusal touched changed


def test_student_never_sees_another_students_documents(
    app: Any, engine: Engine, world: Any, clerk_api: Any
) -> None:
    from conftest import NOW

    theirs = world.cases["in_review"]
    doc = clerk_api.post(
        f"/api/v1/cases/{theirs}/documents",
        data={"kind": "evidence"},
        files={"file": ("e.pdf", MINIMAL_PDF, "application/pdf")},
    ).json()
    with client(app) as c:
        student_login(c, engine, world.students[world.cases["rejected"]], NOW)
        for path in (
            f"/cases/{theirs}/documents/{doc['id']}",
            f"/api/v1/cases/{theirs}/documents/{doc['id']}",
            f"/cases/{world.cases['rejected']}/documents/{doc['id']}",
            f"/api/v1/cases/{world.cases['rejected']}/documents/{doc['id']}",
        ):
            assert c.get(path).status_code == 404, path


def test_fields_a_role_may_not_set(
    app: Any,
    engine: Engine,
    world: Any,
    clerk_api: Any,
) -> None:
    from conftest import NOW

    before = snapshot(engine)
    case_id = world.cases["info_requested"]
    with client(app) as c:
        csrf = student_login(c, engine, world.students[case_id], NOW)
        for data in (
            {"message": "hi", "grade": "1.0"},
            {"message": "hi", "examiner": "x"},
            {"message": "hi", "decision": {"outcome": "recognized"}},
        ):
            r = c.post(
                f"/api/v1/cases/{case_id}/events",
                headers={"X-CSRF-Token": csrf},
                json={"event": "provide_info", "data": data},
            )
            assert r.status_code == 422, r.text
        page = c.post(
            f"/cases/{case_id}/events",
            data={"csrf": csrf, "event": "provide_info", "message": "hi", "grade": "1.0"},
        )
        assert page.status_code == 422
        assert "it takes no field &#39;grade&#39;" in page.text  # the quotes HTML-escaped
        r = c.post(
            "/api/v1/cases",
            headers={"X-CSRF-Token": csrf},
            json={"student_id": world.students[case_id], "offering_id": 1, "state": "recognized"},
        )
        assert r.status_code == 422
    r = clerk_api.post(
        f"/api/v1/cases/{world.cases['submitted']}/events",
        json={"event": "start_review", "data": {"examiner": "examiner", "decision": "recognized"}},
    )
    assert r.status_code == 422
    assert snapshot(engine) == before


def test_csrf_on_forms_and_cookie_api(
    app: Any,
    engine: Engine,
    world: Any,
    clerk: Any,
) -> None:
    before = snapshot(engine)
    case_id = world.cases["planned"]
    for data in ({"event": "enrol"}, {"event": "enrol", "csrf": "forged"}):
        r = clerk.post(f"/cases/{case_id}/events", data=data)
        assert r.status_code == 403
    assert clerk.post(f"/cases/{case_id}/status-link", data={"action": "send"}).status_code == 403
    assert (
        clerk.post(
            f"/cases/{case_id}/documents", files={"file": ("a.pdf", MINIMAL_PDF, "application/pdf")}
        ).status_code
        == 403
    )
    assert clerk.post("/logout").status_code == 403
    assert clerk.post(f"/api/v1/cases/{case_id}/events", json={"event": "enrol"}).status_code == 403
    assert snapshot(engine) == before
    with client(app) as anon:
        r = anon.post("/login", data={"username": "clerk", "password": "x", "csrf": "x"})
        assert r.status_code == 403
    ok = clerk.post(f"/cases/{case_id}/events", data={"event": "enrol", "csrf": clerk.csrf})
    assert ok.status_code == 303


def test_no_state_change_through_get(app: Any, engine: Engine, world: Any, clerk: Any) -> None:
    before = snapshot(engine)
    case_id = world.cases["planned"]
    for path in (
        f"/cases/{case_id}/events?event=enrol&csrf={clerk.csrf}",
        f"/api/v1/cases/{case_id}/events",
        f"/cases/{case_id}/status-link",
        "/logout",
    ):
        assert clerk.get(path).status_code in (404, 405), path
    for route in app.routes:
        path = getattr(route, "path", "")
        if "GET" in getattr(route, "methods", set()) and "{" not in path:
            clerk.get(path)
    assert snapshot(engine) == before


def test_actions_of_the_table_refused_alike_everywhere(
    app: Any, engine: Engine, world: Any, recog: Recog
) -> None:
    """The permission table's actions outside a case page: a refused role is 403 on the API
    and the pages and exit status 3 on the CLI (matching by hand answered 422 before); the
    rules moved into the workflow hold for the CLI as for the web."""
    from conftest import NOW

    before = snapshot(engine)
    examiner, clerk = world.users["examiner"], world.users["clerk"]
    case_id = world.cases["transcript_received"]
    tokens = {who: api_token(engine, who, NOW) for who in (examiner, clerk)}
    with client(app) as c:
        c.csrf = login(c, examiner)
        bearer = {"Authorization": f"Bearer {tokens[examiner]}"}
        r = c.post("/api/v1/transcripts/pending/1/match", headers=bearer, json={"case_id": case_id})
        assert r.status_code == 403, r.text
        assert r.json()["detail"].startswith("an examiner may not match a transcript result")
        r = c.post("/transcripts/pending/1/match", data={"csrf": c.csrf, "case_id": str(case_id)})
        assert r.status_code == 403
    assert recog("transcript", "match", "1", str(case_id), "--actor", examiner) == (403, 3)
    assert recog("transcript", "match", "999999", str(case_id), "--actor", clerk) == (404, 1)

    cohort = {"offering_id": 1, "module": "INF-ML", "event": "recognize", "data": {}}
    with client(app) as c:
        r = c.post(
            "/api/v1/cohorts/decide",
            headers={"Authorization": f"Bearer {tokens[clerk]}"},
            json=cohort,
        )
        assert r.status_code == 403, r.text
    refused = recog(
        "cohort", "decide", "recognize", "--offering", "1", "--module", "INF-ML", "--actor", clerk
    )
    assert refused == (403, 3)
    # A partial recognition is decided case by case, on the CLI as on the page and the API.
    partial = recog(
        "cohort",
        "decide",
        "recognize_partially",
        "--offering",
        "1",
        "--module",
        "INF-ML",
        "--actor",
        examiner,
    )
    assert partial == (422, 1)
    # An undecided case cannot be exported, whichever interface asks.
    assert recog("case", "export", str(world.cases["submitted"]), "--actor", clerk) == (409, 1)
    assert snapshot(engine) == before
