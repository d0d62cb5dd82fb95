"""In real Chromium against a real server: a clerk starts the review of an overdue case, the
examiner rejects it, the student opens the status link and sees the decision and the appeal
button. Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import chromium_or_skip
from web_harness import PASSWORD, sign_in, student_link, uvicorn_server

from models.db import make_engine, session_factory, transaction
from tests.factories import CaseFactory, OfferingFactory, bound, musterstadt
from workflow.cases.documents import FileStore
from workflow.office.catalog import set_user_password


@pytest.fixture
def live(sqlite_template: Path, tmp_path: Path) -> Any:
    chromium_or_skip()
    db = tmp_path / "recog.sqlite3"
    shutil.copy(sqlite_template, db)
    engine = make_engine(f"sqlite:///{db}")
    now = dt.datetime.now(dt.UTC)
    with transaction(session_factory(engine)) as s, bound(s):
        musterstadt()
        for user in ("clerk", "examiner"):
            set_user_password(s, user, PASSWORD)
        case = CaseFactory(
            state="submitted",
            offering=OfferingFactory(past=True, today=now.date()),
            student__matriculation_number="4711",
            student__name="Ada Lovelace",
            student__email="ada@student.example",
            student__preferred_language="en",
            store=FileStore(tmp_path / "var" / "documents"),
            present=now,
        )
        case_id, student_id = case.id, case.student_id
    token = student_link(engine, student_id, now)
    env = {
        "RECOG_DATABASE_URL": f"sqlite:///{db}",
        "RECOG_DATA_DIR": str(tmp_path / "var"),
        "RECOG_ENVIRONMENT": "test",
    }
    with uvicorn_server(env, log=tmp_path / "server.log") as base:
        yield {"base": base, "case_id": case_id, "token": token}
    engine.dispose()


@pytest.mark.slow
def test_review_decision_and_student_status(live: Any, browser: Any, artifacts: Path) -> None:
    base, case_id = live["base"], live["case_id"]

    clerk = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(clerk, base, "clerk")
    clerk.goto(f"{base}/cases?overdue=1")
    row = clerk.locator("tr.overdue", has=clerk.locator(f"a[href='/cases/{case_id}']"))
    assert row.count() == 1
    clerk.screenshot(path=str(artifacts / "1-dashboard-overdue.png"), full_page=True)
    row.locator("a").first.click()
    clerk.wait_for_url(f"{base}/cases/{case_id}")
    assert clerk.locator(".deadline.is-late").count() == 1
    clerk.select_option("#start-examiner", "examiner")
    clerk.locator("#form-start_review button").click()
    clerk.wait_for_url(f"{base}/cases/{case_id}")
    assert clerk.locator(".badge.big.s-in_review").count() == 1
    clerk.screenshot(path=str(artifacts / "2-clerk-review-started.png"), full_page=True)

    examiner = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(examiner, base, "examiner")
    examiner.goto(f"{base}/cases/{case_id}")
    assert examiner.locator("#form-recognize").count() == 1
    examiner.locator("#details-reject > summary").click()  # decision forms start folded
    examiner.fill("#reject-r-learning_outcomes", "The lab part of the module is missing.")
    examiner.fill("#reject-advice", "Take the lab course of the home module.")
    examiner.screenshot(path=str(artifacts / "3-examiner-decision-form.png"), full_page=True)
    examiner.locator("#form-reject button").click()
    examiner.wait_for_url(f"{base}/cases/{case_id}")
    assert examiner.locator(".badge.big.s-rejected").count() == 1
    assert examiner.locator(".decision").count() == 1

    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    ).new_page()
    phone.goto(f"{base}/s/{live['token']}")
    phone.wait_for_url(f"{base}/cases/{case_id}")  # the token is gone from the address
    assert live["token"] not in phone.url
    assert phone.locator(".decision").count() == 1
    assert "lab part" in phone.locator(".decision").inner_text()
    appeal = phone.locator("#form-appeal button")
    assert appeal.is_visible()
    phone.screenshot(path=str(artifacts / "4-student-status-phone.png"), full_page=True)
    for ctx in (clerk.context, examiner.context, phone.context):
        ctx.close()
