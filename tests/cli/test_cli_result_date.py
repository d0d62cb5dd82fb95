"""`recog case show` flags a result whose date a transcript left unknown, or whose ECTS
credits or EQF level differ from the catalogue's; `recog case result-date` records the date
through the same use case as the page and the API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from models import Role
from tests.factories import CaseFactory, OfferingFactory, musterstadt
from workflow.cases.engine import fire
from workflow.cases.guards import FROM_TRANSCRIPT
from workflow.policy.actors import Actor


def test_show_flags_the_result_and_result_date_records_it(
    cli: Callable[..., Any], cli_db: Any
) -> None:
    with cli_db() as s:
        musterstadt()
        case = CaseFactory(state="enrolled", offering=OfferingFactory(past=True))
        case_id = case.id
        fire(
            s,
            case_id,
            "pass_course",
            actor=Actor.system(Role.IMPORT),
            now=dt.datetime.now(dt.UTC),
            data={"grade": "27", "scheme": "it", "ects": "4.0", "source": FROM_TRANSCRIPT},
        )
    shown = cli("case", "show", str(case_id)).out
    assert "the result's date is unknown" in shown
    assert f"recog case result-date {case_id} YYYY-MM-DD" in shown
    assert "ECTS credits 4.0 on the transcript, 5.0 in the catalogue" in shown
    flags = cli("case", "show", str(case_id), "--json").json()["result_flags"]
    assert [f["field"] for f in flags] == ["date", "ects"]

    examiner = cli(
        "case", "result-date", str(case_id), "2026-01-01", "--actor", "examiner", check=False
    )
    assert examiner.code == 3
    future = cli("case", "result-date", str(case_id), "2999-01-01", "--actor", "clerk", check=False)
    assert future.code == 1
    assert "lies in the future" in future.err
    exam = cli("case", "show", str(case_id), "--json").json()["course"]["exam_date"]
    done = cli("case", "result-date", str(case_id), exam, "--actor", "clerk")
    assert f"case {case_id}: result date {exam} recorded" in done.out
    after = cli("case", "show", str(case_id), "--json").json()
    assert after["result"]["date"] == exam
    assert [f["field"] for f in after["result_flags"]] == ["ects"]
    history = cli("case", "history", str(case_id), "--json").json()
    assert history[-1]["event"] == "record_result_date"
