"""Every REST endpoint through HTTP, on SQLite and PostgreSQL: answers, problem details,
If-Match, Idempotency-Key, uploads and downloads, tokens."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from web_harness import api_token, client, student_login

from models import CaseEvent, Outbox
from models.db import session_factory, transaction
from tests.factories import MINIMAL_PDF, TERM_STARTS, OfferingFactory, PartnerFactory, bound

PROBLEM = "application/problem+json"


def events_of(engine: Engine, case_id: int) -> int:
    with session_factory(engine)() as s:
        return s.scalar(select(func.count()).where(CaseEvent.case_id == case_id)) or 0


@pytest.fixture
def catalogue(engine: Engine) -> None:
    """The partners' catalogue: four courses in each of four terms at tdu.fi and unl.fr."""
    partners = [("tdu.fi", "FI", "fi"), ("unl.fr", "FR", "fr")]
    with transaction(session_factory(engine)) as s, bound(s):
        for code, country, scheme in partners:
            partner = PartnerFactory(code=code, country=country)
            for when in TERM_STARTS:
                for i in range(4):
                    OfferingFactory(
                        institution=partner,
                        code=f"{country}-{i + 1:02d}",
                        when=when,
                        grading_scheme=scheme,
                    )


def test_reference_data_and_me(clerk_api: Any, catalogue: None) -> None:
    me = clerk_api.get("/api/v1/me").json()
    assert me["role"] == "clerk"
    codes = [i["code"] for i in clerk_api.get("/api/v1/institutions").json()]
    assert "tdu.fi" in codes
    # The partners and the office's own institution; another home institution is not shown.
    assert "uni-musterstadt.de" in codes
    assert "uni-b.example" not in codes
    progs = clerk_api.get("/api/v1/programmes").json()
    assert {p["code"] for p in progs} == {"INF-BSC", "MATH-BSC"}
    assert any(m["code"] == "INF-ML" for m in clerk_api.get("/api/v1/modules").json())
    page = clerk_api.get("/api/v1/catalogue", params={"partner": "tdu.fi", "limit": 3}).json()
    assert page["total"] >= 16
    assert len(page["items"]) == 3
    assert all(o["partner"] == "tdu.fi" for o in page["items"])


def test_unauthenticated_is_a_problem(anon: Any) -> None:
    r = anon.get("/api/v1/cases")
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["status"] == 401
    assert "Bearer" in r.json()["detail"]
    assert anon.get("/api/v1/me", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_catalogue_import(clerk_api: Any, catalogue: None) -> None:
    csv = (
        "institution,code,term,title,ects,language,eqf_level,learning_outcomes,"
        "assessment_type,participation_mode,start_date,end_date,grading_scheme\n"
        "tdu.fi,FI-99,2027-03,Quantum Basics,5,en,6,Explain qubits,exam,online,"
        "2027-03-01,2027-05-30,fi\n"
    )
    r = clerk_api.post(
        "/api/v1/catalogue/import", files={"file": ("catalogue.csv", csv.encode(), "text/csv")}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 1, "updated": 0}
    bad = clerk_api.post(
        "/api/v1/catalogue/import",
        files={"file": ("c.csv", b"institution,code\nx,y\n", "text/csv")},
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == PROBLEM


def test_students(clerk_api: Any, world: Any) -> None:
    body = {
        "matriculation_number": "555",
        "name": "Ada Lovelace",
        "email": "ada@example.org",
        "preferred_language": "en",
    }
    created = clerk_api.post("/api/v1/students", json=body)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert clerk_api.get(f"/api/v1/students/{sid}").json()["name"] == "Ada Lovelace"
    listing = clerk_api.get("/api/v1/students", params={"limit": 200}).json()
    assert sid in [s["id"] for s in listing["items"]]
    other = world.students[world.case_b]
    assert clerk_api.get(f"/api/v1/students/{other}").status_code == 404
    extra = clerk_api.post("/api/v1/students", json={**body, "institution_id": 2})
    assert extra.status_code == 422


def test_status_link_resend_and_revoke(clerk_api: Any, engine: Engine, world: Any) -> None:
    case_id = world.cases["rejected"]
    sid = world.students[case_id]
    first = clerk_api.post(f"/api/v1/students/{sid}/status-link")
    assert first.status_code == 202
    assert first.json()["queued"] is True
    again = clerk_api.post(f"/api/v1/students/{sid}/status-link")
    assert again.json()["queued"] is False  # pressed twice: one e-mail
    with session_factory(engine)() as s:
        rows = s.scalars(select(Outbox).where(Outbox.template == "status_link")).all()
    assert len(rows) == 1
    assert rows[0].recipient == "student"
    # No token at rest, and no address either: the link is built on RECOG_PUBLIC_URL.
    assert set(rows[0].payload) == {"case_id", "student_id"}
    assert clerk_api.delete(f"/api/v1/students/{sid}/status-links").status_code == 200


def test_case_list_filters_sorting_pagination(clerk_api: Any, world: Any) -> None:
    everything = clerk_api.get("/api/v1/cases", params={"limit": 200}).json()
    assert everything["total"] == len(world.cases)  # not home B's case
    page = clerk_api.get(
        "/api/v1/cases", params={"limit": 4, "offset": 4, "sort": "state", "order": "desc"}
    ).json()
    states = [c["state"] for c in page["items"]]
    assert len(states) == 4
    assert states == sorted(states, reverse=True)
    rejected = clerk_api.get("/api/v1/cases", params={"state": "rejected"}).json()
    assert [c["id"] for c in rejected["items"]] == [world.cases["rejected"]]
    overdue = clerk_api.get("/api/v1/cases", params={"overdue": True}).json()
    assert all(c["overdue_days"] > 0 for c in overdue["items"])
    examiner = world.net.examiner.id
    by_examiner = clerk_api.get("/api/v1/cases", params={"examiner": examiner}).json()
    assert by_examiner["total"] >= 1
    assert all(c["examiner_id"] == examiner for c in by_examiner["items"])
    partner = everything["items"][0]["partner"]
    by_partner = clerk_api.get("/api/v1/cases", params={"partner": partner}).json()
    assert {c["partner"] for c in by_partner["items"]} == {partner}
    course = everything["items"][0]["course"]
    assert all(
        c["course"] == course
        for c in clerk_api.get("/api/v1/cases", params={"course": course}).json()["items"]
    )
    counts = clerk_api.get("/api/v1/cases/counts").json()
    assert counts["rejected"] == 1
    assert "overdue" in counts
    assert clerk_api.get("/api/v1/cases", params={"sort": "name"}).status_code == 422


def test_open_show_fire_history(
    clerk_api: Any, world: Any, engine: Engine, catalogue: None
) -> None:
    sid = clerk_api.post(
        "/api/v1/students",
        json={"matriculation_number": "777", "name": "Grace Hopper", "email": "grace@example.org"},
    ).json()["id"]
    offering = clerk_api.get("/api/v1/catalogue", params={"partner": "unl.fr"}).json()
    module = clerk_api.get("/api/v1/modules").json()[0]["id"]
    opened = clerk_api.post(
        "/api/v1/cases",
        json={
            "student_id": sid,
            "offering_id": offering["items"][-1]["id"],
            "target_module_ids": [module],
        },
    )
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    shown = clerk_api.get(f"/api/v1/cases/{case_id}")
    assert shown.json()["state"] == "planned"
    assert shown.headers["etag"] == '"1"'
    status = clerk_api.get(f"/api/v1/cases/{case_id}/status").json()
    assert status["state"] == "planned"
    assert status["version"] == 1

    stale = clerk_api.post(
        f"/api/v1/cases/{case_id}/events", json={"event": "enrol"}, headers={"If-Match": '"0"'}
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == PROBLEM
    ok = clerk_api.post(
        f"/api/v1/cases/{case_id}/events", json={"event": "enrol"}, headers={"If-Match": '"1"'}
    )
    assert ok.status_code == 201
    assert ok.json()["to_state"] == "enrolled"
    illegal = clerk_api.post(f"/api/v1/cases/{case_id}/events", json={"event": "submit"})
    assert illegal.status_code == 409
    assert "enrolled" in illegal.json()["detail"]
    unknown = clerk_api.post(f"/api/v1/cases/{case_id}/events", json={"event": "teleport"})
    assert unknown.status_code == 422
    guard = clerk_api.post(
        f"/api/v1/cases/{case_id}/events",
        json={"event": "pass_course", "data": {"date": "2026-10-01"}},
    )
    assert guard.status_code == 422
    assert "grade" in guard.json()["detail"]
    smuggled = clerk_api.post(
        f"/api/v1/cases/{case_id}/events",
        json={
            "event": "pass_course",
            "data": {"date": "2026-10-01", "grade": "27", "decision": "x"},
        },
    )
    assert smuggled.status_code == 422
    assert "it takes no field 'decision'" in smuggled.json()["detail"]
    history = clerk_api.get(f"/api/v1/cases/{case_id}/history").json()
    assert [e["event"] for e in history] == ["open", "enrol"]
    targets = clerk_api.put(
        f"/api/v1/cases/{case_id}/targets",
        json={"modules": ["INF-CC"]},
        headers={"If-Match": '"2"'},
    )
    assert targets.status_code == 200, targets.text
    assert (
        clerk_api.put(
            f"/api/v1/cases/{case_id}/examiner",
            json={"username": "examiner"},
            headers={"If-Match": '"2"'},
        ).status_code
        == 412
    )
    assign = clerk_api.put(f"/api/v1/cases/{case_id}/examiner", json={"username": "examiner"})
    assert assign.status_code == 200
    assert assign.json()["version"] == 4
    assert events_of(engine, case_id) == 4


def test_idempotency_key(clerk_api: Any, world: Any, engine: Engine) -> None:
    case_id = world.cases["planned"]
    headers = {"Idempotency-Key": "k-1"}
    first = clerk_api.post(
        f"/api/v1/cases/{case_id}/events", json={"event": "enrol"}, headers=headers
    )
    again = clerk_api.post(
        f"/api/v1/cases/{case_id}/events", json={"event": "enrol"}, headers=headers
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    before = events_of(engine, case_id)
    other = clerk_api.post(
        f"/api/v1/cases/{case_id}/events", json={"event": "withdraw"}, headers=headers
    )
    assert other.status_code == 422
    assert "different request" in other.json()["detail"]
    assert events_of(engine, case_id) == before


def test_documents_upload_list_download(clerk_api: Any, world: Any) -> None:
    case_id = world.cases["enrolled"]
    up = clerk_api.post(
        f"/api/v1/cases/{case_id}/documents",
        data={"kind": "transcript"},
        files={"file": ("../../tor 1.pdf", MINIMAL_PDF, "application/pdf")},
    )
    assert up.status_code == 201, up.text
    doc = up.json()
    assert doc["filename"] == "tor 1.pdf"
    assert doc["size"] == len(MINIMAL_PDF)
    listed = clerk_api.get(f"/api/v1/cases/{case_id}/documents").json()
    assert doc["id"] in [d["id"] for d in listed]
    down = clerk_api.get(f"/api/v1/cases/{case_id}/documents/{doc['id']}")
    assert down.status_code == 200
    assert down.content == MINIMAL_PDF
    assert down.headers["content-type"] == "application/pdf"
    assert down.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in down.headers["content-security-policy"]
    assert down.headers["x-content-type-options"] == "nosniff"
    wrong_type = clerk_api.post(
        f"/api/v1/cases/{case_id}/documents", files={"file": ("x.html", b"<html>", "text/html")}
    )
    assert wrong_type.status_code == 415
    lying = clerk_api.post(
        f"/api/v1/cases/{case_id}/documents",
        files={"file": ("x.pdf", b"MZ\x90\x00", "application/pdf")},
    )
    assert lying.status_code == 415
    assert clerk_api.get(f"/api/v1/cases/{case_id}/documents/999999").status_code == 404


def test_upload_size_limit(
    clerk_api: Any,
    world: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt = clerk_api.app.state.runtime
    monkeypatch.setattr(rt, "settings", rt.settings.model_copy(update={"max_document_bytes": 1000}))
    r = clerk_api.post(
        f"/api/v1/cases/{world.cases['enrolled']}/documents",
        files={"file": ("big.pdf", MINIMAL_PDF + b"0" * 2000, "application/pdf")},
    )
    assert r.status_code == 413


def test_users_and_tokens(app: Any, engine: Engine, world: Any, clerk_api: Any) -> None:
    from conftest import NOW

    assert {u["username"] for u in clerk_api.get("/api/v1/users").json()} >= {"clerk"}
    assert (
        clerk_api.post("/api/v1/users", json={"username": "x", "role": "clerk"}).status_code == 403
    )  # admins only
    with client(app) as admin:
        admin.headers["Authorization"] = f"Bearer {api_token(engine, 'admin', NOW)}"
        made = admin.post(
            "/api/v1/users",
            json={
                "username": "ines",
                "role": "examiner",
                "programmes": ["INF-BSC"],
                "password": "a long enough password",
            },
        )
        assert made.status_code == 201, made.text
        assert made.json()["programmes"] == ["INF-BSC"]
        token = admin.post("/api/v1/tokens", json={"name": "campus"})
        assert token.status_code == 201
        secret, token_id = token.json()["token"], token.json()["id"]
        listed = admin.get("/api/v1/tokens").json()
        assert token_id in [t["id"] for t in listed]
        assert "token" not in listed[0]
    with client(app) as integration:
        integration.headers["Authorization"] = f"Bearer {secret}"
        assert integration.get("/api/v1/me").json()["role"] == "admin"
        assert integration.delete(f"/api/v1/tokens/{token_id}").status_code == 204
        assert integration.get("/api/v1/me").status_code == 401


def test_student_uses_the_api_with_cookie_and_csrf(app: Any, engine: Engine, world: Any) -> None:
    from conftest import NOW

    case_id = world.cases["info_requested"]
    with client(app) as c:
        csrf = student_login(c, engine, world.students[case_id], NOW)
        mine = c.get("/api/v1/cases").json()
        assert [x["id"] for x in mine["items"]] == [case_id]
        assert c.get(f"/api/v1/cases/{case_id}").json()["examiner"] is None
        body = {"event": "provide_info", "data": {"message": "Here it is."}}
        assert c.post(f"/api/v1/cases/{case_id}/events", json=body).status_code == 403
        ok = c.post(f"/api/v1/cases/{case_id}/events", json=body, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 201, ok.text
        assert c.get("/api/v1/students").status_code == 403


def test_problem_details_for_validation(clerk_api: Any) -> None:
    r = clerk_api.post(
        "/api/v1/cases", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    assert json.loads(r.text)["title"]
    r = clerk_api.get("/api/v1/cases/abc")
    assert r.status_code == 422
    assert clerk_api.get("/api/v1/nothing").status_code == 404


def test_case_status_poll(app: Any, engine: Engine, world: Any, clerk_api: Any) -> None:
    """What campus systems poll. On PostgreSQL a token's poll runs on the event loop's own
    connection pool (opened by the app's lifespan); cookie sessions and SQLite take the
    thread pool. Both answer the same, with the same scope and problems."""
    from conftest import NOW

    case_id = world.cases["in_review"]
    pool = clerk_api.app_state.get("hot_reads")
    assert (pool is not None) == (engine.dialect.name == "postgresql")
    served = pool.get_stats().get("requests_num", 0) if pool is not None else 0

    r = clerk_api.get(f"/api/v1/cases/{case_id}/status")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {
        "id",
        "state",
        "version",
        "due_at",
        "due_kind",
        "overdue_days",
        "appeal_ends_at",
        "updated_at",
    }
    assert (body["id"], body["state"]) == (case_id, "in_review")
    assert body["due_kind"] == "decision"
    assert body["due_at"].endswith("Z")
    if pool is not None:
        assert pool.get_stats().get("requests_num", 0) > served  # the hot path answered

    # Another institution's case is not found; so is a case that does not exist.
    for missing in (world.case_b, 99_999):
        r = clerk_api.get(f"/api/v1/cases/{missing}/status")
        assert r.status_code == 404
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["detail"] == f"case {missing} not found"
    # A wrong or revoked token: 401 with the challenge, on either path.
    r = clerk_api.get(
        f"/api/v1/cases/{case_id}/status", headers={"Authorization": "Bearer rcg_wrong"}
    )
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="recog"'

    # The other institution's clerk by token, and the student by cookie: scoped alike.
    token_b = api_token(engine, world.users["clerk_b"], NOW)
    assert (
        clerk_api.get(
            f"/api/v1/cases/{case_id}/status", headers={"Authorization": f"Bearer {token_b}"}
        ).status_code
        == 404
    )
    assert (
        clerk_api.get(
            f"/api/v1/cases/{world.case_b}/status", headers={"Authorization": f"Bearer {token_b}"}
        ).status_code
        == 200
    )
    with client(app) as student:
        student_login(student, engine, world.students[case_id], NOW)
        own = student.get(f"/api/v1/cases/{case_id}/status")
        assert own.status_code == 200
        assert own.json() == body
        assert student.get(f"/api/v1/cases/{world.cases['submitted']}/status").status_code == 404
