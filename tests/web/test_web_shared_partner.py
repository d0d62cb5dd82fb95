"""Two home institutions sharing a partner (docs/adr/0014-shared-partner-data.md): a clerk of
home A cannot change what home B's cases use, through any import and any interface (the API,
the CLI with --actor; the pages have no import), while A may still change what only its own
cases use, and the operator (the CLI without --actor) may change shared data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from cli.context import exit_status
from models import Case, GradingTable, Institution, Module, Offering
from models.db import session_factory, transaction
from tests.factories import CaseFactory, OfferingFactory, PartnerFactory, bound
from workflow.errors import RecogError

HEADER = (
    "institution,code,term,title,ects,language,eqf_level,learning_outcomes,assessment_type,"
    "participation_mode,start_date,end_date,grading_scheme,exam_date,status,quality_assurance,"
    "isced_code\n"
)
TABLE = "kind,institution,scheme,isced,course,term,reference_year,grade,percentage\n"
IT_GRADES = [("30", "10"), ("27", "30"), ("24", "40"), ("18", "20")]


def _row(o: Offering, partner: str, **changed: Any) -> str:
    values = {
        "institution": partner,
        "code": o.code,
        "term": o.term,
        "title": o.title,
        "ects": o.ects,
        "language": o.language,
        "eqf_level": o.eqf_level,
        "learning_outcomes": o.learning_outcomes,
        "assessment_type": o.assessment_type,
        "participation_mode": o.participation_mode,
        "start_date": o.start_date,
        "end_date": o.end_date,
        "grading_scheme": o.grading_scheme,
        "exam_date": o.exam_date or "",
        "status": o.status,
        "quality_assurance": o.quality_assurance or "",
        "isced_code": o.isced_code or "",
        **changed,
    }
    return ",".join(f'"{v}"' for v in values.values()) + "\n"


def _shared(engine: Engine, world: Any) -> tuple[Offering, str]:
    """Home B's case's offering (a partner's course home B uses), and its partner's code."""
    with session_factory(engine)() as s:
        offering = s.scalars(
            select(Offering)
            .join(Case, Case.offering_id == Offering.id)
            .where(Case.id == world.case_b)
        ).one()
        partner = s.get(Institution, offering.institution_id)
        assert partner is not None
        s.expunge(offering)
        return offering, partner.code


def _own(engine: Engine, world: Any) -> tuple[Offering, str]:
    """A partner course only home A's cases use."""
    with transaction(session_factory(engine)) as s, bound(s):
        partner = PartnerFactory(code="solo.example", country="IT")
        offering = OfferingFactory(institution=partner, code="SOLO-1")
        CaseFactory(
            state="planned",
            offering=offering,
            student__institution_id=world.net.home_id,
            student__matriculation_number="5550001",
        )
        s.flush()
        s.expunge(offering)
        return offering, partner.code


def _title(engine: Engine, offering_id: int) -> str:
    with session_factory(engine)() as s:
        return s.scalar(select(Offering.title).where(Offering.id == offering_id)) or ""


def _tables(engine: Engine) -> int:
    with session_factory(engine)() as s:
        return s.scalar(select(func.count()).select_from(GradingTable)) or 0


def _cli(cli_in_process: Any, *args: str) -> tuple[str, int]:
    result = cli_in_process(*args)
    if isinstance(result.exception, RecogError):
        return str(result.exception), exit_status(result.exception)
    return result.output, result.exit_code


def _upload(c: Any, url: str, name: str, text: str) -> Any:
    return c.post(url, files={"file": (name, text.encode(), "text/csv")})


SHARED = (
    "is used by cases of another home institution; a shared offering is changed by the "
    "operator only"
)


def test_a_clerk_cannot_change_an_offering_another_home_uses(
    clerk_api: Any, engine: Engine, world: Any, cli_in_process: Any, tmp_path: Path
) -> None:
    shared, partner = _shared(engine, world)
    before = _title(engine, shared.id)
    for changed in ({"title": "Renamed by A"}, {"status": "cancelled"}, {"ects": "1.0"}):
        text = HEADER + _row(shared, partner, **changed)
        r = _upload(clerk_api, "/api/v1/catalogue/import", "catalogue.csv", text)
        assert r.status_code == 422, r.text
        assert f"catalogue.csv, line 2, field code: {partner} {shared.code}" in r.json()["detail"]
        assert SHARED in r.json()["detail"]
        path = tmp_path / "catalogue.csv"
        path.write_text(text, encoding="utf-8")
        said, status = _cli(
            cli_in_process, "catalog", "import", str(path), "--actor", world.users["clerk"]
        )
        assert status == 1, said
        assert SHARED in said
        assert _title(engine, shared.id) == before
    # The same row unchanged is no change: a re-import of a whole catalogue goes through.
    same = _upload(clerk_api, "/api/v1/catalogue/import", "c.csv", HEADER + _row(shared, partner))
    assert same.status_code == 200, same.text
    # The operator maintains shared partner data.
    path = tmp_path / "operator.csv"
    path.write_text(HEADER + _row(shared, partner, title="Renamed by the operator"), "utf-8")
    said, status = _cli(cli_in_process, "catalog", "import", str(path))
    assert status == 0, said
    assert _title(engine, shared.id) == "Renamed by the operator"


def test_a_clerk_may_change_an_offering_only_its_own_cases_use(
    clerk_api: Any, engine: Engine, world: Any
) -> None:
    own, partner = _own(engine, world)
    r = _upload(
        clerk_api, "/api/v1/catalogue/import", "c.csv", HEADER + _row(own, partner, title="New")
    )
    assert r.status_code == 200, r.text
    assert _title(engine, own.id) == "New"


@pytest.mark.parametrize("scope", ["partner", "course"])
def test_a_clerk_cannot_add_a_partner_table_another_home_is_converted_by(
    clerk_api: Any, engine: Engine, world: Any, cli_in_process: Any, tmp_path: Path, scope: str
) -> None:
    shared, partner = _shared(engine, world)
    group = f",{shared.code},{shared.term}" if scope == "course" else ",,"
    text = TABLE + "".join(f"partner,{partner},it,{group},2027,{g},{p}\n" for g, p in IT_GRADES)
    before = _tables(engine)
    r = _upload(clerk_api, "/api/v1/grading-tables/import", "tables.csv", text)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "tables.csv, line 2, field institution: cases of another home institution are" in detail
    assert "a shared partner table is changed by the operator only" in detail
    path = tmp_path / "tables.csv"
    path.write_text(text, encoding="utf-8")
    said, status = _cli(
        cli_in_process, "grade", "table", "import", str(path), "--actor", world.users["clerk"]
    )
    assert status == 1, said
    assert "a shared partner table is changed by the operator only" in said
    assert _tables(engine) == before
    said, status = _cli(cli_in_process, "grade", "table", "import", str(path))
    assert status == 0, said
    assert _tables(engine) == before + 1


def test_a_clerk_may_add_a_partner_table_only_its_own_cases_use(
    clerk_api: Any, engine: Engine, world: Any
) -> None:
    _, partner = _own(engine, world)
    text = TABLE + "".join(f"partner,{partner},it,,,,2025,{g},{p}\n" for g, p in IT_GRADES)
    r = _upload(clerk_api, "/api/v1/grading-tables/import", "tables.csv", text)
    assert r.status_code == 200, r.text


def test_a_clerk_imports_only_its_own_modules(
    engine: Engine, world: Any, cli_in_process: Any, tmp_path: Path
) -> None:
    path = tmp_path / "modules.csv"
    path.write_text(
        "institution,programme,programme_title,code,title,ects,regulation_version\n"
        "uni-b.example,INF-BSC,Informatik,INF-ML,Taken over,5,2099\n",
        encoding="utf-8",
    )
    with session_factory(engine)() as s:
        before = sorted(s.scalars(select(Module.title)))
    said, status = _cli(
        cli_in_process, "modules", "import", str(path), "--actor", world.users["clerk"]
    )
    assert status == 1, said
    assert "modules.csv, line 2, field institution: uni-b.example is not your institution" in said
    said, status = _cli(
        cli_in_process, "modules", "import", str(path), "--actor", world.users["clerk_b"]
    )
    assert status == 0, said
    with session_factory(engine)() as s:
        assert "Taken over" in set(s.scalars(select(Module.title)))
        assert len(before) == s.scalar(select(func.count()).select_from(Module))
