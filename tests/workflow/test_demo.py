"""The demo network (`recog up --demo`) is data that could be right: each partner's courses
are graded on a scale of the partner's country, and each result on its course's scale."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, select

from models import Case, Institution, Offering
from workflow.grading.grades import convert, scheme_misfit


def test_the_demo_grades_each_course_on_its_partners_scale(demo_template: Path) -> None:
    engine = create_engine(f"sqlite:///{demo_template}")
    try:
        with engine.connect() as conn:
            offerings = conn.execute(
                select(Offering.id, Offering.grading_scheme, Institution.country).join(
                    Institution, Institution.id == Offering.institution_id
                )
            ).all()
            results = conn.execute(
                select(
                    Case.id, Case.result, Offering.grading_scheme, Offering.ects, Offering.eqf_level
                )
                .join(Offering, Offering.id == Case.offering_id)
                .where(Case.result.is_not(None))
            ).all()
    finally:
        engine.dispose()
    assert {o.country for o in offerings} >= {"FI", "IT", "FR"}
    misfits = [
        (o.id, o.grading_scheme, o.country)
        for o in offerings
        if scheme_misfit(o.grading_scheme, o.country)
    ]
    assert not misfits, f"courses on another country's scale: {misfits}"
    assert results
    schemes = {r.grading_scheme for r in results}
    assert {"fr", "it", "fi"} <= schemes, schemes
    for r in results:
        assert r.result["scheme"] == r.grading_scheme, (r.id, r.result)
        assert Decimal(r.result.get("ects", r.ects)) == r.ects, (r.id, r.result)
        assert r.result.get("eqf_level", r.eqf_level) == r.eqf_level, (r.id, r.result)
        if r.result["passed"]:
            convert(r.result["grade"], r.grading_scheme, "nearest")  # a grade its scale knows
