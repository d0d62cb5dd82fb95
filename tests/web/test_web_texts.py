"""What the office and the student read matches what the system does: the cohort page
without a cohort offers the choice, and every page is complete in German."""

from __future__ import annotations

import re
from typing import Any

import web_harness


def test_cohorts_without_a_cohort_shows_the_form_to_choose_one(app: Any, world: Any) -> None:
    with web_harness.client(app) as examiner:
        web_harness.login(examiner, world.users["examiner"])
        r = examiner.get("/cohorts", headers={"Accept-Language": "de"})
        assert r.status_code == 200, r.text
        assert 'id="form-cohort-choose"' in r.text
        assert "Kohorte wählen" in r.text
        in_review = world.cases["in_review"]
        # The examiner's case in review is one of the cohorts offered, by a link and a field.
        links = re.findall(r'href="/cohorts\?offering=(\d+)&amp;module=([^"]+)"', r.text)
        assert links, r.text
        offering, module = links[0]
        assert f'<option value="{offering}"' in r.text
        chosen = examiner.get(f"/cohorts?offering={offering}&module={module}")
        assert chosen.status_code == 200
        assert f'href="/cases/{in_review}"' in chosen.text
        # A half-named cohort: the same form, saying what is wrong (no bare error page).
        half = examiner.get("/cohorts?offering=abc", headers={"Accept-Language": "de"})
        assert half.status_code == 422
        assert 'id="form-cohort-choose"' in half.text
        assert "nennt keine gültige Kohorte" in half.text


def test_cohorts_is_the_examiners_page(clerk: Any) -> None:
    r = clerk.get("/cohorts")
    assert r.status_code == 403


def _dateless_result(engine: Any, case_id: int, now: Any) -> None:
    """The partner's result of ``case_id`` as a transcript without its date delivers it."""
    from models import Role
    from models.db import session_factory, transaction
    from workflow.cases.engine import fire
    from workflow.cases.guards import FROM_TRANSCRIPT
    from workflow.policy.actors import Actor

    with transaction(session_factory(engine)) as s:
        fire(
            s,
            case_id,
            "pass_course",
            actor=Actor.system(Role.IMPORT),
            now=now,
            data={"grade": "27", "scheme": "it", "ects": "4.0", "source": FROM_TRANSCRIPT},
        )


def test_the_case_page_asks_the_clerk_for_an_unknown_result_date(
    app: Any, engine: Any, world: Any, clerk: Any
) -> None:
    from tests.web.conftest import NOW

    case_id = world.cases["enrolled"]
    _dateless_result(engine, case_id, NOW)
    page = clerk.get(f"/cases/{case_id}", headers={"Accept-Language": "de"})
    assert page.status_code == 200
    assert "unbekannt: Das Transcript nennt kein Datum." in page.text
    assert 'id="form-result-date"' in page.text
    assert "ECTS-Punkte: 4.0 laut Transcript, 5.0 laut Katalog." in page.text
    refused = clerk.post(
        f"/cases/{case_id}/result-date", data={"csrf": clerk.csrf, "date": "2999-01-01"}
    )
    assert refused.status_code == 422
    assert "lies in the future" in refused.text
    day = re.search(r'name="date" required value="([0-9-]+)"', page.text)
    assert day, "the form suggests the catalogue's exam date"
    done = clerk.post(
        f"/cases/{case_id}/result-date", data={"csrf": clerk.csrf, "date": day.group(1)}
    )
    assert done.status_code == 303
    after = clerk.get(f"/cases/{case_id}").text
    assert 'id="form-result-date"' not in after
    assert "Datum des Ergebnisses eingetragen" in after  # the timeline
    with web_harness.client(app) as examiner:
        csrf = web_harness.login(examiner, world.users["examiner"])
        seen = examiner.get(f"/cases/{case_id}")
        assert seen.status_code == 200
        forbidden = examiner.post(
            f"/cases/{case_id}/result-date", data={"csrf": csrf, "date": day.group(1)}
        )
        assert forbidden.status_code == 403


def test_the_api_records_an_unknown_result_date(engine: Any, world: Any, clerk_api: Any) -> None:
    from tests.web.conftest import NOW

    case_id = world.cases["enrolled"]
    _dateless_result(engine, case_id, NOW)
    shown = clerk_api.get(f"/api/v1/cases/{case_id}").json()
    assert [f["field"] for f in shown["result_flags"]] == ["date", "ects"]
    late = clerk_api.put(f"/api/v1/cases/{case_id}/result-date", json={"date": "2999-01-01"})
    assert late.status_code == 422
    assert "lies in the future" in late.json()["detail"]
    exam = shown["course"]["exam_date"]
    done = clerk_api.put(f"/api/v1/cases/{case_id}/result-date", json={"date": exam})
    assert done.status_code == 200, done.text
    assert done.json()["event"] == "record_result_date"
    again = clerk_api.get(f"/api/v1/cases/{case_id}").json()
    assert again["result"]["date"] == exam
    assert [f["field"] for f in again["result_flags"]] == ["ects"]
