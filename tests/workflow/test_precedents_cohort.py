"""Precedents are recorded, shown, expire and are checked; a cohort decision converts each
student's own grade and is atomic: all or none."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from config.settings import load_settings
from models import Case, CaseEvent, Module, Precedent
from tests.factories import (
    HOME_MODULES,
    CaseFactory,
    OfferingFactory,
    Office,
    home_modules,
    student_actor,
)
from workflow.cases.engine import fire
from workflow.decisions import cohort, precedents
from workflow.errors import GuardFailed

LATER = dt.datetime(2027, 1, 10, 12, 0, tzinfo=dt.UTC)


def in_review(session: Session, network: Office, n: int, *, course: int = 0) -> int:
    """Student ``n``'s case in review on one partner's course ``course`` (the cases of a
    course share its offering and target module)."""
    return CaseFactory(
        state="in_review",
        offering=OfferingFactory(institution__code="partner.example", code=f"COURSE-{course}"),
        student__matriculation_number=f"P{n:04d}",
        student__name=f"Pat {n}",
        student__email=f"p{n}@example.org",
        targets=home_modules(HOME_MODULES[course % 4][0]),
    ).id


def test_a_decision_becomes_a_precedent_and_is_suggested(session: Session, network: Office) -> None:
    first = in_review(session, network, 1)
    fired = fire(
        session, first, "recognize", actor=network.examiner, now=LATER, data={"modules": "INF-ML"}
    )
    assert fired.data["grade"] == "1.7"  # 27 on the Italian 30..18 scale, converted
    assert fired.data["conversion"]["method"] == "bavarian"
    stored = session.scalar(select(Case.decision).where(Case.id == first))
    assert stored is not None
    assert stored["conversion"]["original"] == "27"
    assert session.scalar(select(func.count()).select_from(Precedent)) == 1
    second = in_review(session, network, 2)
    shown = precedents.for_case(session, second, now=LATER)
    assert [(p["case"], p["module"], p["outcome"]) for p in shown["valid"]] == [
        (first, "INF-ML", "credited")
    ]
    assert shown["suggestion"]["INF-ML"]["grade"] == "1.7"


def test_precedents_expire_with_time_and_with_new_regulations(
    session: Session, network: Office
) -> None:
    first = in_review(session, network, 1)
    fire(session, first, "recognize", actor=network.examiner, now=LATER, data={"modules": "INF-ML"})
    second = in_review(session, network, 2)
    late = LATER + dt.timedelta(days=load_settings().precedent_validity_days + 1)
    aged = precedents.for_case(session, second, now=late)
    assert aged["valid"] == []
    assert aged["expired"][0]["why"] == "older than the validity period"
    session.execute(
        update(Module).where(Module.code == "INF-ML").values(regulation_version="PO 2027")
    )
    changed = precedents.for_case(session, second, now=LATER)
    assert changed["valid"] == []
    assert changed["expired"][0]["why"] == "regulations changed to PO 2027"


def test_check_lists_pairs_decided_differently(session: Session, network: Office) -> None:
    a, b = in_review(session, network, 1), in_review(session, network, 2)
    fire(session, a, "recognize", actor=network.examiner, now=LATER, data={"modules": "INF-ML"})
    assert precedents.inconsistent(session, actor=None, now=LATER) == []
    fire(
        session,
        b,
        "reject",
        actor=network.examiner,
        now=LATER,
        data={"reasons": {"level": "EQF 5 instead of 6"}, "advice": "Take the home exam"},
    )
    found = precedents.inconsistent(session, actor=None, now=LATER)
    assert len(found) == 1
    assert found[0]["module"] == "INF-ML"
    assert sorted(d["outcome"] for d in found[0]["decisions"]) == ["credited", "not_credited"]


def test_a_decision_overturned_on_appeal_is_no_precedent_the_grant_is(
    session: Session, network: Office
) -> None:
    a, b = in_review(session, network, 1), in_review(session, network, 2)
    fire(session, a, "recognize", actor=network.examiner, now=LATER, data={"modules": "INF-ML"})
    fire(
        session,
        b,
        "reject",
        actor=network.examiner,
        now=LATER,
        data={"reasons": {"level": "EQF 5 instead of 6"}, "advice": "Take the home exam"},
    )
    assert len(precedents.inconsistent(session, actor=None, now=LATER)) == 1
    student = student_actor(session, b)
    fire(session, b, "appeal", actor=student, now=LATER, data={"message": "It is level 6"})
    fire(
        session,
        b,
        "grant_appeal",
        actor=network.board,
        now=LATER + dt.timedelta(days=3),
        data={"modules": "INF-ML", "reasons": "The course is EQF level 6."},
    )
    later = LATER + dt.timedelta(days=4)
    assert precedents.inconsistent(session, actor=None, now=later) == []
    third = in_review(session, network, 3)
    shown = precedents.for_case(session, third, now=later)
    assert sorted((p["case"], p["outcome"]) for p in shown["valid"]) == [
        (a, "credited"),
        (b, "credited"),
    ]
    assert shown["expired"] == []
    # The overturned rejection is still on record, only no precedent.
    kept = session.scalars(select(Precedent.outcome).where(Precedent.case_id == b)).all()
    assert sorted(kept) == ["credited", "not_credited"]


def _cohort(session: Session, network: Office, size: int) -> list[int]:
    return [in_review(session, network, n) for n in range(size)]


def test_cohort_decision_converts_each_grade_one_event_per_case(
    session: Session,
    network: Office,
) -> None:
    cases = _cohort(session, network, 6)
    # Give the students different partner grades, as a real cohort has.
    for n, case_id in enumerate(cases):
        result = dict(session.scalar(select(Case.result).where(Case.id == case_id)) or {})
        result["grade"] = str(30 - n)
        session.execute(update(Case).where(Case.id == case_id).values(result=result))
    offering = session.scalar(select(Case.offering_id).where(Case.id == cases[0]))
    assert offering is not None
    before = session.scalar(select(func.count()).select_from(CaseEvent)) or 0
    fired = cohort.decide(
        session,
        offering_id=offering,
        module_code="INF-ML",
        event="recognize",
        data={"modules": "INF-ML"},
        actor=network.examiner,
        now=LATER,
    )
    assert [f.case_id for f in fired] == sorted(cases)
    assert [f.data["grade"] for f in fired] == ["1.0", "1.3", "1.3", "1.7", "2.0", "2.3"]
    assert session.scalar(select(func.count()).select_from(CaseEvent)) == before + len(cases)
    states = set(session.scalars(select(Case.state).where(Case.id.in_(cases))))
    assert states == {"recognized"}
    assert session.scalar(select(func.count()).select_from(Precedent)) == len(cases)


def test_cohort_of_200_is_all_or_none(session: Session, network: Office) -> None:
    cases = _cohort(session, network, 200)
    offering = session.scalar(select(Case.offering_id).where(Case.id == cases[0]))
    assert offering is not None
    # One student's result cannot be converted (a fail on the scale): the batch must stop.
    spoiled = cases[137]
    result = dict(session.scalar(select(Case.result).where(Case.id == spoiled)) or {})
    result["grade"] = "12"
    session.execute(update(Case).where(Case.id == spoiled).values(result=result))
    before = session.scalar(select(func.count()).select_from(CaseEvent))
    savepoint = session.begin_nested()
    with pytest.raises(GuardFailed, match=f"case {spoiled}"):
        cohort.decide(
            session,
            offering_id=offering,
            module_code="INF-ML",
            event="recognize",
            data={"modules": "INF-ML"},
            actor=network.examiner,
            now=LATER,
        )
    savepoint.rollback()
    assert session.scalar(select(func.count()).select_from(CaseEvent)) == before
    assert set(session.scalars(select(Case.state).where(Case.id.in_(cases)))) == {"in_review"}
    fired = cohort.decide(
        session,
        offering_id=offering,
        module_code="INF-ML",
        event="recognize",
        data={"modules": "INF-ML", "grade": "2.0"},
        actor=network.examiner,
        now=LATER,
    )
    assert len(fired) == 200
    assert set(session.scalars(select(Case.state).where(Case.id.in_(cases)))) == {"recognized"}


def test_a_cohort_by_percentiles_names_every_case_it_cannot_convert(
    session: Session,
    network: Office,
) -> None:
    from decimal import Decimal

    from models import Institution, Offering
    from workflow.grading import tables as gt

    cases = _cohort(session, network, 4)
    offering = session.get(
        Offering, session.scalar(select(Case.offering_id).where(Case.id == cases[0]))
    )
    assert offering is not None
    partner = session.get(Institution, offering.institution_id)
    assert partner is not None
    _, grades = gt.partner_grades(
        [
            (g, Decimal(p), None)
            for g, p in [("30", "20"), ("27", "30"), ("24", "30"), ("18", "20")]
        ],
        ["it"],
    )
    gt.store_table(
        session,
        kind="partner",
        institution_id=partner.id,
        scheme="it",
        reference_year=2025,
        source="manual",
        grades=grades,
        now=LATER,
    )
    gt.store_table(
        session,
        kind="home",
        institution_id=network.home_id,
        scheme="de",
        reference_year=2025,
        source="manual",
        now=LATER,
        grades=gt.home_grades([(g, Decimal(25), None) for g in ("1.0", "2.0", "3.0", "4.0")]),
    )
    # Two students' results came on the French scale: the partner's table is on the Italian.
    for case_id in (cases[1], cases[3]):
        session.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(result={"passed": True, "grade": "14", "scheme": "fr"})
        )
    before = session.scalar(select(func.count()).select_from(CaseEvent))
    with pytest.raises(GuardFailed) as refused:
        cohort.decide(
            session,
            offering_id=offering.id,
            module_code="INF-ML",
            event="recognize",
            data={"modules": "INF-ML", "conversion": "percentile"},
            actor=network.examiner,
            now=LATER,
        )
    message = str(refused.value)
    assert f"cases {cases[1]}, {cases[3]} of its 4 cannot be converted by percentiles" in message
    assert f"case {cases[3]}: no partner grading table for {partner.code} on scheme fr" in message
    assert f"case {cases[0]}:" not in message
    assert session.scalar(select(func.count()).select_from(CaseEvent)) == before
    assert set(session.scalars(select(Case.state).where(Case.id.in_(cases)))) == {"in_review"}
    shown = cohort.preview(
        session,
        offering_id=offering.id,
        module_code="INF-ML",
        actor=network.examiner,
        rounding="nearest",
    )
    assert [c["percentile"] is not None for c in shown] == [True, False, True, False]
    assert cohort.methods(shown) == ["bavarian"]
