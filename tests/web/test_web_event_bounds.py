"""The event-field bounds of the procedure through the API: an oversize or deeply nested
value is refused with 422 naming the event and the field, nothing reaches the audit trail,
and the case's history still answers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from models import CaseEvent
from models.db import session_factory


def _events(engine: Engine, case_id: int) -> int:
    with session_factory(engine)() as s:
        return s.scalar(select(func.count()).where(CaseEvent.case_id == case_id)) or 0


def test_the_api_refuses_oversize_and_nested_event_data(
    clerk_api: Any, engine: Engine, world: Any
) -> None:
    case_id = world.cases["enrolled"]
    before = _events(engine, case_id)
    deep: Any = "x"
    for _ in range(900):
        deep = [deep]
    # The 8 MB scheme of the finding never reaches the workflow: the body limit answers first.
    huge = clerk_api.post(
        f"/api/v1/cases/{case_id}/events",
        json={
            "event": "pass_course",
            "data": {"date": "2026-10-01", "grade": "27", "scheme": "x" * 8 * 1024 * 1024},
        },
    )
    assert huge.status_code == 413, huge.text
    for field, value in [
        ("scheme", "x" * 100_000),  # within the body limit, far over the field's
        ("scheme", deep),
        ("language", {"code": "it"}),
    ]:
        r = clerk_api.post(
            f"/api/v1/cases/{case_id}/events",
            json={
                "event": "pass_course",
                "data": {"date": "2026-10-01", "grade": "27", field: value},
            },
        )
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail.startswith(f"cannot pass_course case {case_id}: {field} "), detail
        assert len(detail) < 200
    assert _events(engine, case_id) == before
    history = clerk_api.get(f"/api/v1/cases/{case_id}/history")
    assert history.status_code == 200
    assert len(history.json()) == before
