"""The dashboard's free-text search (``?q=``) and the API's ``q``: the same query as the CLI's
``case list --search``, under the policy (another office's student is not found)."""

from __future__ import annotations

import re
from typing import Any


def _listed(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'href="/cases/(\d+)"', html)}


def test_the_dashboard_searches(clerk: Any, world: Any) -> None:
    state, case_id = sorted(world.cases.items(), key=lambda kv: kv[1])[3]
    everything = _listed(clerk.get("/cases").text)
    assert len(everything) > 1
    page = clerk.get("/cases", params={"q": "  student   3 "})
    assert page.status_code == 200
    assert 'name="q"' in page.text
    assert 'value="student 3"' in page.text  # the search is kept in its field
    found = _listed(page.text)
    assert case_id in found
    assert found < everything
    by_number = _listed(clerk.get("/cases", params={"q": f"#{case_id}"}).text)
    assert by_number == {case_id}
    narrowed = _listed(clerk.get("/cases", params={"q": "student", "state": state}).text)
    assert narrowed == {case_id}
    # Another office's student is not found, however the name is written.
    assert _listed(clerk.get("/cases", params={"q": "OTHER STUDENT"}).text) == set()


def test_the_api_searches(clerk_api: Any, world: Any) -> None:
    case_id = world.cases["submitted"]
    number = clerk_api.get(f"/api/v1/cases/{case_id}").json()["student"]["matriculation_number"]
    r = clerk_api.get("/api/v1/cases", params={"q": number})
    assert r.status_code == 200, r.text
    assert ([c["id"] for c in r.json()["items"]], r.json()["total"]) == ([case_id], 1)
    assert clerk_api.get("/api/v1/cases", params={"q": "other student"}).json()["total"] == 0
    assert clerk_api.get("/api/v1/cases", params={"q": "x" * 121}).status_code == 422
