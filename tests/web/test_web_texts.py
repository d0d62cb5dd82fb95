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
