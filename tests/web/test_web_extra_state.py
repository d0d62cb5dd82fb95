"""An office adds a state to its procedure (a copy of the file, through
``RECOG_PROCEDURE_FILE``) and the API drives a case through it, deadline and e-mail included,
with no Python file changed; a field the new event does not declare is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from config.settings import load_settings
from models import Outbox
from models.db import session_factory
from tasks.delivery import MemoryTransport, Transports, relay


def test_a_case_goes_through_an_added_state(
    extra_state_procedure: Path, clerk_api: Any, world: Any, engine: Engine, data_dir: Path
) -> None:
    case_id = world.cases["submitted"]
    events = f"/api/v1/cases/{case_id}/events"

    early = clerk_api.post(events, json={"event": "finish_check"})
    assert early.status_code == 409
    assert "the office must check the request formally first" in early.json()["detail"]
    bogus = clerk_api.post(events, json={"event": "check_formally", "data": {"grade": "1.0"}})
    assert bogus.status_code == 422
    assert "takes no field 'grade'; check_formally takes note (text)" in bogus.json()["detail"]

    fired = clerk_api.post(events, json={"event": "check_formally", "data": {"note": "complete"}})
    assert fired.status_code == 201, fired.text
    assert fired.json()["to_state"] == "formal_check"
    shown = clerk_api.get(f"/api/v1/cases/{case_id}").json()
    assert shown["state"] == "formal_check"
    assert shown["deadline"]["kind"] == "decision"

    with session_factory(engine)() as s:
        ids = list(
            s.scalars(
                select(Outbox.id).where(
                    Outbox.case_id == case_id, Outbox.event_seq == fired.json()["seq"]
                )
            )
        )
    memory = MemoryTransport()
    settings = load_settings(
        database_url=engine.url.render_as_string(hide_password=False),
        data_dir=data_dir,
        environment="test",
    )
    sent = relay(
        session_factory(engine),
        settings=settings,
        transports=Transports(mail=memory, webhooks=memory),
        ids=ids,
    )
    assert (sent.sent, sent.failed) == (2, 0)  # the student and the office
    student = next(m for m in memory.mails if "student.example" in str(m["To"]))
    assert "new status: Formal check" in student["Subject"]
    text = student.get_body(preferencelist=("plain",)).get_content()
    assert "the office checks that your request is complete" in text

    done = clerk_api.post(events, json={"event": "finish_check", "data": {"examiner": "examiner"}})
    assert done.status_code == 201, done.text
    assert done.json()["to_state"] == "in_review"


def test_the_case_page_offers_the_added_event_with_its_fields(
    extra_state_procedure: Path, clerk: Any, world: Any
) -> None:
    case_id = world.cases["submitted"]
    page = clerk.get(f"/cases/{case_id}").text  # in German, the clerk's language
    assert "Formal prüfen" in page
    assert 'name="note"' in page  # the field the procedure declares, with no form of its own
    moved = clerk.post(
        f"/cases/{case_id}/events",
        data={"csrf": clerk.csrf, "event": "check_formally", "note": "complete"},
    )
    assert moved.status_code == 303
    page = clerk.get(f"/cases/{case_id}").text
    assert "Formale Prüfung" in page
    assert "Formale Prüfung begonnen" in page  # the timeline's words, from the procedure
