"""The operating commands end to end: reminders, the outbox, transcripts, precedents, exports
and cohort decisions, as a clerk would run them."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy import delete

from models import Outbox
from tests.factories import CaseFactory, OfferingFactory, musterstadt

EXAMPLE = (
    Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "elmo" / "example.xml"
)


def test_remind_and_deliver(cli: Callable[..., Any], cli_db: Any, tmp_path: Path) -> None:
    with cli_db() as s:
        musterstadt()
        for state in ("course_passed", "submitted", "in_review"):  # reminders due by now
            CaseFactory(state=state, offering=OfferingFactory(past=True))
        s.execute(delete(Outbox))  # the invented history is not mailed, the reminders are
    sweep = cli("remind", "--json").json()
    assert sweep["claimed"] > 0
    assert sweep["notifications"] > 0
    assert cli("remind", "--json").json()["claimed"] == 0  # each reminder once
    relayed = cli("outbox", "relay").out
    assert f"{sweep['notifications']} sent, 0 failed" in relayed
    rows = cli("outbox", "list", "--json", "--limit", "1000").json()
    assert {r["status"] for r in rows} == {"sent"}
    mails = list((tmp_path / "var" / "mail").glob("*.eml"))
    assert len(mails) == sweep["notifications"]
    message = email.message_from_bytes(mails[0].read_bytes(), policy=email.policy.default)
    assert message["Subject"].startswith(("[Recog] Case ", "[Recog] Antrag "))
    assert message["Message-ID"].startswith("<recog.")
    assert cli("outbox", "list", "--failed", "--json").json() == []


def test_decide_export_and_check(
    cli: Callable[..., Any],
    cli_db: Any,
    tmp_path: Path,
) -> None:
    with cli_db():
        musterstadt()
        CaseFactory.create_batch(2, state="in_review")
        # One course and module decided both ways: an inconsistent precedent.
        course = OfferingFactory(code="TWICE")
        CaseFactory(state="recognized", offering=course)
        CaseFactory(state="rejected", offering=course)
    waiting = cli("case", "list", "--state", "in_review", "--json").json()
    case = str(waiting[0]["id"])
    shown = cli("case", "show", case, "--json").json()
    target = shown["targets"][0]["code"]
    fired = cli(
        "case",
        "fire",
        case,
        "recognize",
        "--actor",
        "examiner",
        "--data",
        f"modules={target}",
        "--json",
    ).json()
    assert fired["to"] == "recognized"
    decision = cli("case", "show", case, "--json").json()["decision"]
    assert decision["conversion"]["method"] == "bavarian"  # the grade was converted
    assert decision["grade"] == decision["conversion"]["grade"]
    # One course was decided both ways; the check says so and fails.
    check = cli("precedents", "check", check=False)
    assert check.code == 1
    assert "credited" in check.out
    assert "not_credited" in check.out
    cli("outbox", "relay")
    notice_docs = [
        d for d in cli("case", "show", case, "--json").json()["documents"] if d["kind"] == "notice"
    ]
    assert len(notice_docs) == 1
    out = tmp_path / "decision.xml"
    cli("case", "export", case, "--out", str(out))
    root = etree.fromstring(out.read_bytes())
    assert root.tag.endswith("elmo")
    assert target.encode() in out.read_bytes()
    refused = cli("case", "export", str(waiting[1]["id"]), check=False)
    assert refused.code == 1
    assert "has no decision yet" in refused.err


def test_transcript_import_waits_for_a_clerk(cli: Callable[..., Any], cli_db: Any) -> None:
    with cli_db():
        musterstadt()  # no case of the transcript's student
    report = cli("transcript", "import", str(EXAMPLE), "--json").json()
    assert report["format"] == "ELMO 1.7"
    assert {r["status"] for r in report["results"]} == {"unmatched"}
    assert len(cli("transcript", "pending", "--json").json()) == len(report["results"])
    again = cli("transcript", "import", str(EXAMPLE), "--json").json()
    assert {r["status"] for r in again["results"]} == {"skipped"}
    bomb = cli("transcript", "import", str(EXAMPLE.with_name("schema.xsd")), check=False)
    assert bomb.code == 1
    assert bomb.err.startswith("error: schema.xsd")


def test_cohort_needs_waiting_cases(cli: Callable[..., Any], cli_db: Any) -> None:
    with cli_db():
        musterstadt()
        assert OfferingFactory().id == 1  # a course without cases
    result = cli(
        "cohort",
        "decide",
        "--offering",
        "1",
        "--module",
        "INF-ML",
        "recognize",
        "--actor",
        "examiner",
        check=False,
    )
    assert result.code == 1
    assert "is waiting for your decision" in result.err
