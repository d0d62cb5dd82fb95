"""Grading tables: stored and migrated, ordered best first whatever order a partner sends,
filled by the transcript import (EWP gradeConversionTable, ELMO resultDistribution), imported
from files all or nothing, found most specific first for a case, and used by a decision that
stores the chosen method with its tables."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Case, GradingTable, Institution, Module, Offering, Programme
from models.db import make_engine, session_factory
from models.migrate import current_revision, downgrade, head_revision, upgrade
from tests.factories import (
    CaseFactory,
    InstitutionFactory,
    OfferingFactory,
    Office,
    PartnerFactory,
    bound,
    musterstadt,
)
from workflow.cases.documents import MemoryStore
from workflow.cases.engine import fire
from workflow.decisions.notices import render_notice_html
from workflow.errors import GuardFailed, ValidationFailed
from workflow.grading import tables as gt
from workflow.imports import ImportRejected
from workflow.office.catalog import add_institution, import_catalogue
from workflow.transcripts.elmo import parse_transcript
from workflow.transcripts.export import export_decision
from workflow.transcripts.importing import import_transcript

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "elmo"
EWP = REFERENCE / "ewp-imobility-tors-get-response-example.xml"
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
# grade-conversion.md's worked example: the partner's table for ISCED 0612 (sent worst first,
# as the EWP example does) and a home distribution.
PARTNER = [("F", "0.8"), ("E", "24.7"), ("D", "26.3"), ("C", "36.3"), ("B", "9.9"), ("A", "2.0")]
HOME = [
    ("1.0", 5),
    ("1.3", 8),
    ("1.7", 12),
    ("2.0", 15),
    ("2.3", 15),
    ("2.7", 13),
    ("3.0", 12),
    ("3.3", 8),
    ("3.7", 7),
    ("4.0", 5),
]


def partner_grades(rows: list[tuple[str, str]] = PARTNER) -> list[gt.Grade]:
    return gt.partner_grades([(label, Decimal(p), None) for label, p in rows], ["ects"])[1]


def home_grades(rows: list[tuple[str, int]] = HOME) -> list[gt.Grade]:
    return gt.home_grades([(label, Decimal(p), None) for label, p in rows])


ITALIAN = "unitol.it"  # the partner whose tables the tests store


@pytest.fixture
def network(network: Office, engine: Engine) -> Office:
    """The home office, the Italian partner, and the Finnish and French ones the import files
    name."""
    with session_factory(engine)() as s, s.begin(), bound(s):
        PartnerFactory(code=ITALIAN, name="Università Telematica di Trento", country="IT")
        PartnerFactory(code="tdu.fi", name="Tampere Digital University", country="FI")
        PartnerFactory(code="unl.fr", name="Université Numérique de Lyon", country="FR")
    return network


def offering_of(session: Session, case_id: int) -> Offering:
    return session.execute(
        select(Offering).join(Case, Case.offering_id == Offering.id).where(Case.id == case_id)
    ).scalar_one()


def review_case(
    session: Session,
    net: Office,
    *,
    grade: str = "C",
    scheme: str = "ects",
    matriculation: str = "G1",
) -> int:
    """A case in review whose partner grade is ``grade`` on ``scheme``."""
    case_id = CaseFactory(
        state="in_review",
        offering=OfferingFactory(institution__code=ITALIAN, code="IT-01"),
        student__matriculation_number=matriculation,
        student__name="Grace Table",
        student__email=f"{matriculation}@example.org",
        present=NOW,
    ).id
    result = dict(session.scalar(select(Case.result).where(Case.id == case_id)) or {})
    session.execute(
        update(Case)
        .where(Case.id == case_id)
        .values(result={**result, "grade": grade, "scheme": scheme})
    )
    return case_id


# --- storage and migration ---------------------------------------------------------------------


def refused(session: Session, row: GradingTable) -> None:
    """The database itself refuses ``row``; the session goes on."""
    savepoint = session.begin_nested()
    session.add(row)
    with pytest.raises(IntegrityError):
        session.flush()
    savepoint.rollback()


def test_a_table_is_created_replaced_or_left_unchanged(
    session: Session,
    network: Office,
) -> None:
    partner = session.execute(
        select(Institution.id).where(Institution.code == "unitol.it")
    ).scalar_one()
    key = {
        "kind": "partner",
        "institution_id": partner,
        "scheme": "ects",
        "reference_year": 2025,
        "source": "manual",
        "isced_code": "0612",
        "now": NOW,
    }
    first, status = gt.store_table(session, grades=partner_grades(), **key)  # type: ignore[arg-type]
    assert status == "created"
    assert gt.store_table(session, grades=partner_grades(), **key) == (first, "unchanged")  # type: ignore[arg-type]
    changed = [
        ("A", "3.0"),
        ("B", "8.9"),
        ("C", "36.3"),
        ("D", "26.3"),
        ("E", "24.7"),
        ("F", "0.8"),
    ]
    assert gt.store_table(session, grades=partner_grades(changed), **key) == (first, "updated")  # type: ignore[arg-type]
    # Another year is another table; the key is unique on both databases.
    other, status = gt.store_table(
        session, grades=partner_grades(), **{**key, "reference_year": 2024}
    )  # type: ignore[arg-type]
    assert (other != first, status) == (True, "created")
    row = session.get(GradingTable, first)
    assert row is not None
    assert (row.scope, row.isced_code, row.source) == ("isced:0612", "0612", "manual")
    assert [g["label"] for g in row.grades] == ["A", "B", "C", "D", "E", "F"]
    assert row.grades[-1] == {"label": "F", "percentage": "0.8", "failing": True}
    refused(
        session,
        GradingTable(
            kind="partner",
            institution_id=partner,
            scheme="ects",
            scope="isced:0612",
            isced_code="0612",
            reference_year=2025,
            source="manual",
            grades=[],
            created_at=NOW,
            updated_at=NOW,
        ),
    )


def test_the_database_refuses_a_table_with_two_reference_groups(
    session: Session, network: Office
) -> None:
    module = session.execute(select(Module.id).where(Module.code == "INF-ML")).scalars().first()
    refused(
        session,
        GradingTable(
            kind="home",
            institution_id=network.home_id,
            scheme="de",
            scope="module:x",
            isced_code="0612",
            module_id=module,
            reference_year=2025,
            source="manual",
            grades=[],
            created_at=NOW,
            updated_at=NOW,
        ),
    )
    refused(
        session,
        GradingTable(
            kind="partner",
            institution_id=network.home_id,
            scheme="de",
            scope="module:x",
            module_id=module,
            reference_year=2025,
            source="manual",
            grades=[],
            created_at=NOW,
            updated_at=NOW,
        ),
    )


def test_migration_0005_goes_down_and_up_keeping_the_data(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'tables.sqlite3'}")
    upgrade(engine)
    with session_factory(engine)() as s, s.begin(), bound(s):
        net = musterstadt()
        OfferingFactory.create_batch(3)
        s.execute(update(Offering).values(isced_code="0613"))
        gt.store_table(
            s,
            kind="home",
            institution_id=net.home_id,
            scheme="de",
            reference_year=2025,
            source="manual",
            grades=home_grades(),
            now=NOW,
        )
        offerings = s.scalar(select(func.count()).select_from(Offering))
    downgrade(engine, "0004")
    assert current_revision(engine) == "0004"
    with engine.connect() as conn:
        assert "grading_tables" not in {
            r[0]
            for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        assert conn.exec_driver_sql("SELECT count(*) FROM offerings").scalar() == offerings
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Offering)) == offerings
        assert s.scalar(select(func.count()).select_from(GradingTable)) == 0
        assert s.connection().exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


# --- ordering ----------------------------------------------------------------------------------


def test_grades_are_stored_best_first_whatever_order_they_came_in() -> None:
    scheme, grades = gt.partner_grades([(x, Decimal(p), None) for x, p in PARTNER], ["pl"])
    assert scheme == "ects"  # the Polish 5..3 scale cannot order letters; ECTS letters can
    assert [(g.label, g.failing) for g in grades] == [
        ("A", False),
        ("B", False),
        ("C", False),
        ("D", False),
        ("E", False),
        ("F", True),
    ]
    italian = [
        ("18", Decimal(10), None),
        ("30", Decimal(5), None),
        ("17", Decimal(5), None),
        ("24", Decimal(80), None),
    ]
    scheme, grades = gt.partner_grades(italian, ["it"])
    assert scheme == "it"
    assert [(g.label, g.failing) for g in grades] == [
        ("30", False),
        ("24", False),
        ("18", False),
        ("17", True),
    ]
    german = gt.home_grades([("4", Decimal(50), None), ("1,0", Decimal(50), None)])
    assert [g.label for g in german] == ["1.0", "4.0"]


@pytest.mark.parametrize(
    ("rows", "schemes", "message"),
    [
        # A word beside ranges could mean any band (ranges themselves: see the tests below).
        (
            [("Less than 20", "10"), ("20-39.9", "90")],
            ["pl"],
            "'Less than 20' is neither a range nor a number",
        ),
        ([("31", "50"), ("30", "50")], ["it"], "better than the best grade 30"),
        ([("A", "50"), ("B", "40")], ["ects"], "add up to 90"),
        ([("A", "0"), ("F", "100")], ["ects"], "no passing grade"),
        ([("passed", "100")], ["passfail"], "pass/fail: it has no grades to compare"),
    ],
)
def test_a_table_that_cannot_be_ordered_or_does_not_add_up_is_refused(
    rows: list[tuple[str, str]], schemes: list[str], message: str
) -> None:
    with pytest.raises(ValidationFailed, match=message):
        gt.partner_grades([(x, Decimal(p), None) for x, p in rows], schemes)


def test_a_home_distribution_holds_german_steps_only() -> None:
    with pytest.raises(ValidationFailed, match=r"'5\.0' is not a German grade step"):
        gt.home_grades([("1.0", Decimal(95), None), ("5.0", Decimal(5), None)])


# --- the transcript import fills them ----------------------------------------------------------


def warsaw(session: Session, *, scheme: str = "pl", code: str = "1000-217bMRJ") -> int:
    partner = session.execute(
        select(Institution.id).where(Institution.code == "uw.edu.pl")
    ).scalar()
    if partner is None:
        partner = add_institution(
            session,
            code="uw.edu.pl",
            name="University of Warsaw",
            country="PL",
            kind="partner",
            erasmus_code="PL WARSZAW01",
        ).id
    session.add(
        Offering(
            institution_id=partner,
            code=code,
            term="2015-W",
            title="HTML",
            ects=6,
            language="pl",
            eqf_level=6,
            learning_outcomes="HTML",
            assessment_type="exam",
            participation_mode="online",
            start_date=dt.date(2015, 10, 1),
            end_date=dt.date(2016, 2, 28),
            grading_scheme=scheme,
        )
    )
    session.flush()
    return partner


def test_the_ewp_grade_conversion_table_is_kept(session: Session, network: Office) -> None:
    partner = warsaw(session)
    report = import_transcript(session, EWP, store=MemoryStore(), now=NOW)
    kept = [t for t in report.tables if t["table"]]
    assert [(t["status"], t["what"]) for t in kept] == [
        ("created", "EWP table for ISCED-F 0612, scheme ects")
    ]
    row = session.get(GradingTable, kept[0]["table"])
    assert row is not None
    assert (
        row.kind,
        row.institution_id,
        row.scheme,
        row.scope,
        row.reference_year,
        row.source,
        row.filename,
    ) == ("partner", partner, "ects", "isced:0612", 2015, "ewp", EWP.name)
    assert [(g["label"], g["percentage"], g["failing"]) for g in row.grades] == [
        ("A", "2.0", False),
        ("B", "9.9", False),
        ("C", "36.3", False),
        ("D", "26.3", False),
        ("E", "24.7", False),
        ("F", "0.8", True),
    ]
    # Its course had no code the catalogue knows: its distribution waits for nobody.
    skipped = [t for t in report.tables if t["status"] == "skipped"]
    assert "no course offering of the partner has this code" in skipped[0]["note"]
    again = import_transcript(session, EWP, store=MemoryStore(), now=NOW)
    assert [t["status"] for t in again.tables if t["table"]] == ["unchanged"]
    assert session.scalar(select(func.count()).select_from(GradingTable)) == 1


def test_an_unknown_partner_keeps_no_table(session: Session, network: Office) -> None:
    report = import_transcript(session, EWP, store=MemoryStore(), now=NOW)
    assert report.tables == [
        {
            "table": None,
            "status": "skipped",
            "what": "grading tables",
            "note": "unknown partner institution uw.edu.pl",
        }
    ]
    assert session.scalar(select(func.count()).select_from(GradingTable)) == 0


def test_a_result_distribution_becomes_its_offerings_table(
    session: Session, network: Office
) -> None:
    """The EWP example with the course's own code: its offering learns its ISCED-F field and
    keeps the course's result distribution (counts, failed results included)."""
    partner = warsaw(session, scheme="ects", code="HTML-1")
    text = EWP.read_text(encoding="utf-8").replace(
        '<identifier type="ewp-los-id">CR/19560ed8-5183-4842-9bb0-2b7e23f56522</identifier>',
        '<identifier type="local">HTML-1</identifier>',
    )
    report = import_transcript(
        session, text.encode(), filename="tor.xml", store=MemoryStore(), now=NOW
    )
    offering = session.execute(select(Offering).where(Offering.code == "HTML-1")).scalar_one()
    assert offering.isced_code == "0612"
    assert {t["status"] for t in report.tables} == {"created", "updated"}
    row = session.execute(
        select(GradingTable).where(GradingTable.scope == f"offering:{offering.id}")
    ).scalar_one()
    assert (row.institution_id, row.scheme, row.source, row.reference_year, row.offering_id) == (
        partner,
        "ects",
        "result_distribution",
        2015,
        offering.id,
    )
    assert [(g["label"], g["count"], g["failing"]) for g in row.grades] == [
        ("A", 7, False),
        ("B", 37, False),
        ("C", 135, False),
        ("D", 98, False),
        ("E", 92, False),
        ("F", 3, True),
    ]
    assert row.grades[2]["percentage"] == "36.29"  # 135 of 372


# --- files entered by the office ---------------------------------------------------------------

HEADER = "kind,institution,scheme,isced,course,term,programme,module,reference_year,grade,"


def table_file(tmp_path: Path, rows: list[str], column: str = "percentage") -> Path:
    path = tmp_path / "tables.csv"
    path.write_text(HEADER + column + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_file_imports_partner_tables_and_home_distributions(
    session: Session, network: Office, tmp_path: Path
) -> None:
    term = offering_of(session, review_case(session, network)).term
    rows = [f"partner,unitol.it,ects,0612,,,,,2025,{x},{p}" for x, p in PARTNER]
    rows += [
        f"partner,unitol.it,it,,IT-01,{term},,,2025,{x},{p}"
        for x, p in [("30", "10"), ("25", "60"), ("18", "30")]
    ]
    rows += [f"home,uni-musterstadt.de,,,,,INF-BSC,INF-ML,2025,{x},{p}" for x, p in HOME]
    rows += [f"home,uni-musterstadt.de,de,,,,INF-BSC,,2024,{x},{p}" for x, p in HOME]
    summary = gt.import_file(session, table_file(tmp_path, rows), now=NOW)
    assert (summary.created, summary.updated, summary.unchanged) == (4, 0, 0)
    listed = {
        (t["kind"], t["scope_label"], t["reference_year"]): t for t in gt.list_tables(session)
    }
    assert set(listed) == {
        ("partner", "ISCED-F 0612", 2025),
        ("partner", f"course IT-01 ({term})", 2025),
        ("home", "module INF-ML", 2025),
        ("home", "programme INF-BSC", 2024),
    }
    assert listed[("partner", "ISCED-F 0612", 2025)]["shares"].startswith("A: 2.0 · B: 9.9")
    assert all(t["source"] == "manual" for t in listed.values())
    again = gt.import_file(session, table_file(tmp_path, rows), now=NOW)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)


def test_counts_become_percentages(session: Session, network: Office, tmp_path: Path) -> None:
    rows = [
        f"home,uni-musterstadt.de,,,,,,,2025,{x},{n}"
        for x, n in [("1.0", 1), ("2.0", 2), ("3.0", 1)]
    ]
    gt.import_file(session, table_file(tmp_path, rows, "count"), now=NOW)
    (table,) = gt.list_tables(session, kind="home")
    assert [(g["label"], g["percentage"], g["count"]) for g in table["grades"]] == [
        ("1.0", "25.00", 1),
        ("2.0", "50.00", 2),
        ("3.0", "25.00", 1),
    ]


def test_bad_rows_are_refused_with_line_and_field_and_nothing_is_imported(
    session: Session, network: Office, tmp_path: Path
) -> None:
    rows = [
        "partner,unitol.it,ects,0612,,,,,2025,A,60",  # line 2
        "partner,unitol.it,ects,0612,,,,,2025,A,40",  # line 3: A twice
        "partner,nowhere.example,ects,,,,,,2025,A,100",  # line 4: unknown institution
        "partner,unitol.it,,,,,,,2025,A,100",  # line 5: no scheme
        "home,uni-musterstadt.de,,,,,,,20x5,1.0,100",  # line 6: bad year
        "home,uni-musterstadt.de,,,,,,NOPE,2026,1.0,100",  # line 7: unknown module
        "home,uni-b.example,,,,,,,2026,1.0,100",  # line 8: unknown institution
        "partner,tdu.fi,fi,0612,,,,,2026,6,100",  # line 9: better than best
        "partner,unl.fr,fr,061,FR-01,2026-01,,,2026,12,100",  # line 10: two groups
        "home,uni-musterstadt.de,,,,,,,2027,1.0,30",  # line 11: adds up to 30
    ]
    with pytest.raises(ImportRejected) as refused:
        gt.import_file(session, table_file(tmp_path, rows), now=NOW)
    problems = [str(e) for e in refused.value.errors]
    assert problems == [
        "line 3, field grade: grade A is listed twice in this table (also at line 2)",
        "line 4, field institution: unknown institution 'nowhere.example' (add it first: "
        "recog institution add)",
        "line 5: a partner table needs its grading scheme (scheme)",
        "line 6, field reference_year: Input should be a valid integer, unable to parse "
        "string as an integer",
        "line 7, field module: uni-musterstadt.de has no module NOPE",
        "line 8, field institution: unknown institution 'uni-b.example' (add it first: "
        "recog institution add)",
        "line 9, field grade: 6 is better than the best grade 5 of scheme fi",
        "line 10: one reference group per table: isced, course+term, programme or module (a "
        "module may name its programme)",
        "line 11, field percentage: the percentages add up to 30, not 100",
    ]
    assert str(refused.value).startswith("tables.csv: 9 problem(s), nothing imported:\n")
    assert session.scalar(select(func.count()).select_from(GradingTable)) == 0


def test_an_office_may_import_only_its_own_home_distribution(
    session: Session, network: Office, tmp_path: Path
) -> None:
    InstitutionFactory(code="uni-b.example")  # another home institution
    rows = [f"home,uni-b.example,,,,,,,2025,{x},{p}" for x, p in HOME]
    with pytest.raises(ImportRejected, match=r"uni-b\.example is not your institution"):
        gt.import_file(
            session, table_file(tmp_path, rows), now=NOW, home_institution_id=network.home_id
        )


def test_the_catalogue_takes_an_isced_code(
    session: Session, network: Office, tmp_path: Path
) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(
        "institution,code,term,title,ects,language,eqf_level,learning_outcomes,"
        "assessment_type,participation_mode,start_date,end_date,grading_scheme,isced_code\n"
        "tdu.fi,FI-900,2027-03,Quantum,5.0,en,7,Qubits,exam,online,2027-03-01,2027-06-01,fi,"
        "0613\n",
        encoding="utf-8",
    )
    import_catalogue(session, path)
    assert (
        session.execute(select(Offering.isced_code).where(Offering.code == "FI-900")).scalar_one()
        == "0613"
    )


# --- finding a case's tables -------------------------------------------------------------------


def test_the_most_specific_table_wins(session: Session, network: Office) -> None:
    case_id = review_case(session, network)
    offering = offering_of(session, case_id)
    offering.isced_code = "0612"
    partner = offering.institution_id
    module, programme = session.execute(
        select(Module.id, Module.programme_id).join(Case.targets).where(Case.id == case_id)
    ).one()
    assert not gt.tables_for_case(session, case_id).known
    assert (
        "no partner grading table for unitol.it on scheme ects"
        in gt.tables_for_case(session, case_id).missing()
    )

    def store(kind: str, year: int = 2025, source: str = "manual", **scope: object) -> int:
        institution = partner if kind == "partner" else network.home_id
        grades = partner_grades() if kind == "partner" else home_grades()
        return gt.store_table(
            session,
            kind=kind,
            institution_id=institution,
            scheme="ects" if kind == "partner" else "de",
            reference_year=year,
            source=source,
            grades=grades,
            now=NOW,
            **scope,
        )[0]  # type: ignore[arg-type]

    def found() -> tuple[int | None, int | None]:
        tables = gt.tables_for_case(session, case_id)
        return (
            tables.partner.id if tables.partner else None,
            tables.home.id if tables.home else None,
        )

    whole_partner, whole_home = store("partner"), store("home")
    assert found() == (whole_partner, whole_home)
    broad = store("partner", isced_code="06")
    assert found()[0] == broad
    narrow = store("partner", isced_code="061")
    assert found()[0] == narrow
    imported = store("partner", source="ewp", isced_code="0612")
    assert found()[0] == imported
    by_hand = store("partner", isced_code="0612")
    assert found()[0] == by_hand  # same group and year: the office's own beats an import
    newer = store("partner", year=2026, source="ewp", isced_code="0612")
    assert found()[0] == newer  # a newer year beats the source
    course = store("partner", year=2020, source="result_distribution", offering_id=offering.id)
    assert found()[0] == course  # the course offering itself beats its field
    field_home = store("home", isced_code="0612")
    assert found()[1] == field_home
    programme_home = store("home", programme_id=programme)
    assert found()[1] == programme_home
    module_home = store("home", module_id=module)
    assert found() == (course, module_home)
    tables = gt.tables_for_case(session, case_id)
    assert tables.partner is not None
    assert tables.partner.scope_label == f"course {offering.code} ({offering.term})"


def test_a_table_on_another_scheme_is_not_used(session: Session, network: Office) -> None:
    case_id = review_case(session, network, grade="27", scheme="it")
    gt.store_table(
        session,
        kind="partner",
        institution_id=offering_of(session, case_id).institution_id,
        scheme="ects",
        reference_year=2025,
        source="manual",
        grades=partner_grades(),
        now=NOW,
    )
    assert gt.tables_for_case(session, case_id).partner is None


# --- the decision ------------------------------------------------------------------------------


def tables_for(session: Session, case_id: int) -> tuple[int, int]:
    offering = offering_of(session, case_id)
    partner_id = gt.store_table(
        session,
        kind="partner",
        institution_id=offering.institution_id,
        scheme="ects",
        reference_year=2025,
        source="manual",
        grades=partner_grades(),
        now=NOW,
    )[0]
    programme = session.execute(
        select(Programme.id).where(
            Programme.institution_id == offering_of(session, case_id).institution_id
        )
    ).first()
    assert programme is None  # a partner has no programmes: the home table is the office's
    home_id = gt.store_table(
        session,
        kind="home",
        institution_id=session.scalar(select(Case.institution_id).where(Case.id == case_id)) or 0,
        scheme="de",
        reference_year=2024,
        source="manual",
        grades=home_grades(),
        now=NOW,
    )[0]
    return partner_id, home_id


def test_a_percentile_decision_stores_its_method_and_tables(
    session: Session, network: Office
) -> None:
    case_id = review_case(session, network)
    partner_id, home_id = tables_for(session, case_id)
    fired = fire(
        session,
        case_id,
        "recognize",
        actor=network.examiner,
        now=NOW,
        data={"modules": ["INF-ML"], "conversion": "percentile"},
    )
    decision = session.scalar(select(Case.decision).where(Case.id == case_id)) or {}
    conversion = decision["conversion"]
    assert decision["grade"] == "2.0"  # C's band midpoint 30.3 % lies in the home band of 2.0
    assert (
        conversion["original"],
        conversion["scheme"],
        conversion["method"],
        conversion["grade"],
    ) == ("C", "ects", "percentile", "2.0")
    parameters = conversion["parameters"]
    assert (parameters["partner_table_id"], parameters["home_table_id"]) == (partner_id, home_id)
    assert parameters["partner_table"]["C"] == "36.3"
    assert parameters["home_table"]["2.0"] == "15"
    assert parameters["failing"] == ["F"]
    assert parameters["tables"]["partner"] == {
        "id": partner_id,
        "institution": "unitol.it",
        "scheme": "ects",
        "scope": "all",
        "group": "",
        "reference_year": 2025,
        "source": "manual",
    }
    assert parameters["tables"]["home"]["reference_year"] == 2024
    assert conversion["compared"] == {
        "method": "bavarian",
        "grade": "2.3",
        "difference": "0.3",
        "differs": True,
    }
    assert conversion["explanation"][0].startswith(f"partner table #{partner_id}: unitol.it")
    assert fired.data["conversion"]["method"] == "percentile"  # the audit trail has it too
    # The notice says which distributions were compared.
    html = render_notice_html(
        event="recognize",
        decision=decision,
        data={},
        language="de",
        case_id=case_id,
        student_name="Grace Table",
        matriculation_number="G1",
        course={
            "title": "Cloud",
            "code": "IT-02",
            "partner_name": "UniTol",
            "term": "2026",
            "ects": "5",
            "grade_as_printed": "C",
            "scheme": "ects",
        },
        institution={
            "name": "Universität Musterstadt",
            "office_email": "pa@example.org",
            "address_lines": ["Str. 1"],
            "court": None,
        },
        issued_at=NOW,
        appeal_ends_at=NOW + dt.timedelta(days=30),
        zone=ZoneInfo("Europe/Berlin"),
    )
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "Prozentrangverfahren" in text
    assert "Notenverteilung der Partnerhochschule: gesamte Hochschule, Bezugsjahr 2025" in text
    assert "Notenverteilung der Hochschule: gesamte Hochschule, Bezugsjahr 2024" in text
    # The ELMO export carries it and stays valid against the v2.0 schema.
    exported = export_decision(
        decision=decision,
        case_id=case_id,
        student_name="Grace Table",
        matriculation_number="G1",
        course={
            "title": "Cloud",
            "code": "IT-02",
            "partner_name": "UniTol",
            "term": "2026",
            "ects": "5",
            "grade_as_printed": "C",
            "scheme": "ects",
        },
        institution={
            "name": "Universität Musterstadt",
            "schac": "uni-musterstadt.de",
            "country": "DE",
        },
        partner={"name": "UniTol", "schac": "unitol.it", "country": "IT"},
        issued_at=NOW,
        zone=ZoneInfo("Europe/Berlin"),
    )
    assert b"method percentile" in exported
    assert f"partner_table_id = {partner_id}".encode() in exported
    assert parse_transcript(exported, filename="export.xml").results


def test_the_bavarian_formula_stays_the_default(session: Session, network: Office) -> None:
    case_id = review_case(session, network)
    tables_for(session, case_id)
    fire(
        session, case_id, "recognize", actor=network.examiner, now=NOW, data={"modules": ["INF-ML"]}
    )
    decision = session.scalar(select(Case.decision).where(Case.id == case_id)) or {}
    assert (decision["conversion"]["method"], decision["grade"]) == ("bavarian", "2.3")


def test_a_chosen_grade_is_kept_beside_the_percentile_conversion(
    session: Session, network: Office
) -> None:
    case_id = review_case(session, network)
    tables_for(session, case_id)
    fire(
        session,
        case_id,
        "recognize",
        actor=network.examiner,
        now=NOW,
        data={"modules": ["INF-ML"], "conversion": "percentile", "grade": "1.7"},
    )
    decision = session.scalar(select(Case.decision).where(Case.id == case_id)) or {}
    assert (decision["grade"], decision["conversion"]["grade"]) == ("1.7", "2.0")


@pytest.mark.parametrize(
    ("conversion", "message"),
    [
        (
            "percentile",
            "the percentile conversion needs grading tables: no partner grading table "
            "for unitol.it on scheme ects",
        ),
        ("ranking", "conversion names the method of grade conversion: bavarian or percentile"),
        # A made-up conversion result is not even the text the field takes (fire's check).
        ({"method": "percentile", "grade": "1.0"}, "conversion must be text"),
    ],
)
def test_a_percentile_decision_without_tables_or_with_a_made_up_method_is_refused(
    session: Session, network: Office, conversion: object, message: str
) -> None:
    case_id = review_case(session, network)
    refusal = ValidationFailed if isinstance(conversion, dict) else GuardFailed
    with pytest.raises(refusal, match=message):
        fire(
            session,
            case_id,
            "recognize",
            actor=network.examiner,
            now=NOW,
            data={"modules": ["INF-ML"], "conversion": conversion},
        )
    assert session.scalar(select(Case.state).where(Case.id == case_id)) == "in_review"


# --- grades that are ranges --------------------------------------------------------------------

# A Spanish partner (scheme es: 10 best, 5 lowest pass) publishing its table in bands, worst
# first, with the failing band; shares of all results.
SPANISH = [("0-4,9", "5"), ("5-5,9", "25"), ("6-6,9", "35"), ("7-8,9", "27"), ("9-10", "8")]
PERCENT = [
    ("90-100", "10"),
    ("80-89.9", "20"),
    ("70-79.9", "30"),
    ("60-69.9", "25"),
    ("50-59.9", "15"),
]


@pytest.mark.parametrize(
    ("label", "bounds"),
    [
        ("80-89.9", ("80", "89.9")),
        ("1,0–1,5", ("1.0", "1.5")),  # decimal comma, en dash
        (" 90 - 100 ", ("90", "100")),
        ("1,5-1,0", ("1.0", "1.5")),  # either way round: the same grades
        ("100", None),
        ("B", None),
        ("2-", None),
        ("A-", None),
        ("-5", None),
        # named grades that mention their numbers are labels, not ranges
        ("A (90-100)", None),
        ("Good 80-89", None),
        ("ca. 80-90", None),
    ],
)
def test_a_range_is_two_numbers_with_a_dash_between(
    label: str, bounds: tuple[str, str] | None
) -> None:
    expected = None if bounds is None else (Decimal(bounds[0]), Decimal(bounds[1]))
    assert gt.parse_band(label) == expected


@pytest.mark.parametrize(
    "label", ["80-89.9x", "80--90", "1.0.0-2", "80-89,9,5", "80-90-100", "8O-90"]
)
def test_a_range_written_wrong_is_refused(label: str) -> None:
    with pytest.raises(gt.GradeProblem, match="is not a range of two numbers") as refused:
        gt.parse_band(label)
    assert refused.value.label == label


def test_named_grades_that_mention_numbers_keep_the_files_order(
    session: Session, network: Office, tmp_path: Path
) -> None:
    # A scheme Recog does not know, grades named with their ranges: labels, kept best first as
    # the file lists them (as before grades in bands were read), not refused as bad ranges.
    rows = [
        f"partner,unitol.it,xx,0612,,,,,2025,{x},{p}"
        for x, p in [("A (90-100)", "20"), ("B (80-89)", "50"), ("C (70-79)", "30")]
    ]
    assert gt.import_file(session, table_file(tmp_path, rows), now=NOW).created == 1
    grades = gt.list_tables(session)[0]["grades"]
    assert [(g["label"], g.get("lower")) for g in grades] == [
        ("A (90-100)", None),
        ("B (80-89)", None),
        ("C (70-79)", None),
    ]


@pytest.mark.parametrize(
    ("rows", "scheme", "ordered", "failing"),
    [
        # ascending (10 best): best first is highest first; the band below 5 fails
        (SPANISH, "es", ["9-10", "7-8,9", "6-6,9", "5-5,9", "0-4,9"], ["0-4,9"]),
        # descending (1.0 best): best first is lowest first; the band beyond 4.0 fails
        (
            [
                ("3,6-4,0", "15"),
                ("1,0-1,5", "20"),
                ("4,1-5,0", "5"),
                ("2,6-3,5", "30"),
                ("1,6-2,5", "30"),
            ],
            "de",
            ["1,0-1,5", "1,6-2,5", "2,6-3,5", "3,6-4,0", "4,1-5,0"],
            ["4,1-5,0"],
        ),
        # a single number beside ranges is the band from itself to itself
        ([("18-23", "40"), ("30", "5"), ("24-29", "55")], "it", ["30", "24-29", "18-23"], []),
    ],
)
def test_bands_are_stored_best_first_as_the_scheme_runs(
    rows: list[tuple[str, str]], scheme: str, ordered: list[str], failing: list[str]
) -> None:
    found, grades = gt.partner_grades(
        [(x, Decimal(p), None) for x, p in rows], [scheme], given_scheme=True
    )
    assert found == scheme
    assert [g.label for g in grades] == ordered
    assert [g.label for g in grades if g.failing] == failing
    assert all(g.lower is not None and g.upper is not None for g in grades)
    # The transcript import, which tries the schemes of the partner's offerings, agrees.
    assert gt.partner_grades([(x, Decimal(p), None) for x, p in rows], ["ects", scheme]) == (
        found,
        grades,
    )


def test_bands_of_a_scheme_recog_does_not_know_keep_the_files_order() -> None:
    scheme, grades = gt.partner_grades(
        [(x, Decimal(p), None) for x, p in PERCENT], ["pct"], given_scheme=True
    )
    assert (scheme, [g.label for g in grades]) == ("pct", [x for x, _ in PERCENT])
    assert (grades[1].lower, grades[1].upper, grades[1].failing) == (
        Decimal(80),
        Decimal("89.9"),
        False,
    )
    shuffled = [PERCENT[0], PERCENT[2], PERCENT[1], *PERCENT[3:]]
    with pytest.raises(gt.GradeProblem, match=r"but 80-89\.9 after 70-79\.9 goes up") as refused:
        gt.partner_grades([(x, Decimal(p), None) for x, p in shuffled], ["pct"], given_scheme=True)
    assert refused.value.label == "80-89.9"


def test_a_table_of_ranges_is_stored_and_read_back_with_its_bounds(
    session: Session, network: Office
) -> None:
    partner = session.execute(
        select(Institution.id).where(Institution.code == "unitol.it")
    ).scalar_one()
    _, grades = gt.partner_grades([(x, Decimal(p), None) for x, p in SPANISH], ["es"])
    table_id, status = gt.store_table(
        session,
        kind="partner",
        institution_id=partner,
        scheme="es",
        reference_year=2025,
        source="manual",
        grades=grades,
        now=NOW,
    )
    assert status == "created"
    row = session.get(GradingTable, table_id)
    assert row is not None
    assert row.grades[1] == {
        "label": "7-8,9",
        "percentage": "27",
        "failing": False,
        "lower": "7",
        "upper": "8.9",
    }
    assert gt.get_table(session, table_id).grades == tuple(grades)


def test_a_file_of_ranges_is_imported_from_csv_and_json(
    session: Session, network: Office, tmp_path: Path
) -> None:
    # CSV: a decimal comma inside a comma-separated file is quoted
    rows = [f'partner,unitol.it,es,0612,,,,,2025,"{x}",{p}' for x, p in SPANISH]
    summary = gt.import_file(session, table_file(tmp_path, rows), now=NOW)
    assert (summary.created, summary.updated, summary.unchanged) == (1, 0, 0)
    path = tmp_path / "tables.json"
    path.write_text(
        json.dumps(
            [
                {
                    "kind": "partner",
                    "institution": "unitol.it",
                    "scheme": "pct",
                    "reference_year": 2025,
                    "grade": x,
                    "percentage": p,
                }
                for x, p in PERCENT
            ]
        ),
        encoding="utf-8",
    )
    summary = gt.import_file(session, path, now=NOW)
    assert (summary.created, summary.updated, summary.unchanged) == (1, 0, 0)
    listed = {t["scheme"]: t for t in gt.list_tables(session, kind="partner")}
    assert listed["es"]["shares"] == (
        "9-10: 8 · 7-8,9: 27 · 6-6,9: 35 · 5-5,9: 25 · 0-4,9: 5 (fail)"
    )
    assert listed["es"]["grades"][-1]["lower"] == "0"
    assert [(g["label"], g["lower"], g["upper"]) for g in listed["pct"]["grades"]][:2] == [
        ("90-100", "90", "100"),
        ("80-89.9", "80", "89.9"),
    ]
    assert gt.import_file(session, path, now=NOW).unchanged == 1


def test_bad_bands_are_refused_with_line_and_field_and_nothing_is_imported(
    session: Session, network: Office, tmp_path: Path
) -> None:
    rows = [
        "partner,unitol.it,pct,0611,,,,,2025,90-100,50",  # line 2
        "partner,unitol.it,pct,0611,,,,,2025,80-90,50",  # line 3: shares 90 with line 2
        "partner,unitol.it,pct,0612,,,,,2025,90-100,50",  # line 4
        "partner,unitol.it,pct,0612,,,,,2025,80-89.9x,50",  # line 5: not a number
        "partner,unitol.it,pct,0613,,,,,2025,90-100,50",  # line 6
        "partner,unitol.it,pct,0613,,,,,2025,A-C,50",  # line 7: letters among ranges
        "partner,unitol.it,es,0614,,,,,2025,9-10,50",  # line 8
        'partner,unitol.it,es,0614,,,,,2025,"4-5,5",50',  # line 9: pass and fail in one
        "partner,unitol.it,it,0615,,,,,2025,28-31,50",  # line 10: beyond the best 30
        "partner,unitol.it,it,0615,,,,,2025,18-27,50",  # line 11
        "partner,unitol.it,pct,0616,,,,,2025,90-100,50",  # line 12: adds up to 90
        "partner,unitol.it,pct,0616,,,,,2025,80-89.9,40",  # line 13
        "partner,unitol.it,ects,0617,,,,,2025,90-100,100",  # line 14: a letter scheme
    ]
    with pytest.raises(ImportRejected) as refused:
        gt.import_file(session, table_file(tmp_path, rows), now=NOW)
    assert [str(e) for e in refused.value.errors] == [
        "line 3, field grade: band 80-90 overlaps band 90-100: both hold 90 (a band's bounds "
        "belong to it, so bands must not overlap, not even on a bound)",
        "line 5, field grade: '80-89.9x' is not a range of two numbers (write it as 80-89.9 "
        "or 1,0-1,5: a decimal point or comma, a hyphen or an en dash between)",
        "line 7, field grade: 'A-C' is neither a range nor a number: in a table of ranges "
        "(such as 90-100) every grade must be a range or a number, or Recog cannot tell which "
        "grades 'A-C' stands for",
        "line 9, field grade: band 4-5,5 holds passing and failing grades (the lowest pass of "
        "scheme es is 5): give the failing grades a band of their own",
        "line 10, field grade: band 28-31 reaches beyond the best grade 30 of scheme it",
        "line 12, field percentage: the percentages add up to 90, not 100",
        "line 14, field grade: scheme ects is a scale of letters (A, B, C, D, E, FX, F), not "
        "of numbers: its grades are not ranges such as 90-100",
    ]
    assert session.scalar(select(func.count()).select_from(GradingTable)) == 0


def test_a_transcripts_table_of_ranges_is_kept_and_a_bad_one_skipped(
    session: Session, network: Office
) -> None:
    warsaw(session)  # its offering is on the Polish scale 5..3
    bands = {
        "F": "2,0-2,9",
        "E": "3,0-3,4",
        "D": "3,5-3,9",
        "C": "4,0-4,4",
        "B": "4,5-4,9",
        "A": "5",
    }
    text = EWP.read_text(encoding="utf-8")
    for letter, band in bands.items():
        text = text.replace(f'<gradeFrequency label="{letter}"', f'<gradeFrequency label="{band}"')
    report = import_transcript(
        session, text.encode(), filename="tor.xml", store=MemoryStore(), now=NOW
    )
    (kept,) = [t for t in report.tables if t["table"]]
    assert kept["what"] == "EWP table for ISCED-F 0612, scheme pl"
    row = session.get(GradingTable, kept["table"])
    assert row is not None
    assert [(g["label"], g.get("lower"), g.get("upper"), g["failing"]) for g in row.grades] == [
        ("5", "5", "5", False),
        ("4,5-4,9", "4.5", "4.9", False),
        ("4,0-4,4", "4.0", "4.4", False),
        ("3,5-3,9", "3.5", "3.9", False),
        ("3,0-3,4", "3.0", "3.4", False),
        ("2,0-2,9", "2.0", "2.9", True),
    ]
    session.delete(row)
    session.flush()
    overlapping = text.replace('label="3,5-3,9"', 'label="3,4-3,9"')
    report = import_transcript(
        session, overlapping.encode(), filename="tor2.xml", store=MemoryStore(), now=NOW
    )
    skipped = [t for t in report.tables if t["what"] == "EWP table for ISCED-F 0612"]
    assert skipped == [
        {
            "table": None,
            "status": "skipped",
            "what": "EWP table for ISCED-F 0612",
            "note": "band 3,4-3,9 overlaps band 3,0-3,4: both hold 3.4 (a band's "
            "bounds belong to it, so bands must not overlap, not even on "
            "a bound)",
        }
    ]
    assert session.scalar(select(func.count()).select_from(GradingTable)) == 0


def spanish_tables(session: Session) -> gt.CaseTables:
    partner = session.execute(
        select(Institution.id).where(Institution.code == "unitol.it")
    ).scalar_one()
    home = session.execute(
        select(Institution.id).where(Institution.code == "uni-musterstadt.de")
    ).scalar_one()
    _, grades = gt.partner_grades([(x, Decimal(p), None) for x, p in SPANISH], ["es"])
    partner_id = gt.store_table(
        session,
        kind="partner",
        institution_id=partner,
        scheme="es",
        reference_year=2025,
        source="manual",
        grades=grades,
        now=NOW,
    )[0]
    home_id = gt.store_table(
        session,
        kind="home",
        institution_id=home,
        scheme="de",
        reference_year=2025,
        source="manual",
        grades=home_grades(),
        now=NOW,
    )[0]
    return gt.CaseTables(gt.get_table(session, partner_id), gt.get_table(session, home_id), "", "")


# The Spanish bands without the failing one (5 %), renormalised over the 95 % that passed:
# 9-10 holds 0 to 8/95 = 8.4 %, 7-8,9 holds 8.4 to 35/95 = 36.8 %, 6-6,9 holds 36.8 to 73.7 %,
# 5-5,9 holds 73.7 to 100 %. Home bands (HOME): 1.0 0-5, 1.3 5-13, 1.7 13-25, 2.0 25-40,
# 2.3 40-55, 2.7 55-68, 3.0 68-80, 3.3 80-88, 3.7 88-95, 4.0 95-100.
@pytest.mark.parametrize(
    ("grade", "band", "german"),
    [
        ("7,5", "7-8,9", "1.7"),  # inside: midpoint 21.5/95 = 22.6 % lies in 1.7 (13-25)
        ("7", "7-8,9", "1.7"),  # on the lower bound, which belongs to the band
        ("8.9", "7-8,9", "1.7"),  # on the upper bound
        ("9", "9-10", "1.0"),  # midpoint 4/95 = 4.2 % lies in 1.0 (0-5)
        ("10", "9-10", "1.0"),  # the best grade of the scale
        ("6", "6-6,9", "2.7"),  # midpoint 52.5/95 = 55.3 % lies in 2.7 (55-68)
        ("5,0", "5-5,9", "3.3"),  # the lowest pass: midpoint 82.5/95 = 86.8 % lies in 3.3 (80-88)
        ("7-8,9", "7-8,9", "1.7"),  # a grade printed as the band is that band
    ],
)
def test_a_grade_is_converted_as_the_band_that_holds_it(
    session: Session, network: Office, grade: str, band: str, german: str
) -> None:
    conversion = gt.convert_by_tables(grade, "es", spanish_tables(session))
    assert conversion.percentile is not None
    assert (conversion.original, conversion.percentile.band.label, conversion.grade) == (
        grade,
        band,
        german,
    )
    assert conversion.parameters["partner_band"]["label"] == band  # type: ignore[index]
    assert f"{grade} lies in the partner's band {band}" in conversion.explanation[2]


@pytest.mark.parametrize(
    ("grade", "message"),
    [
        (
            "5,95",
            "grade 5,95 lies in none of the bands of the partner's table #{id} (bounds "
            "included): 9-10, 7-8,9, 6-6,9, 5-5,9, 0-4,9 (fail)",
        ),  # between two bands
        ("10.5", "grade 10.5 lies in none of the bands"),
        ("4,5", "grade 4,5 lies in the band 0-4,9, a fail: it is not converted"),
        (
            "sobresaliente",
            "grade 'sobresaliente' is not a number, and the partner's table #{id} "
            "gives its grades as ranges: 9-10, 7-8,9",
        ),
    ],
)
def test_a_grade_in_no_band_or_a_failing_one_is_refused(
    session: Session, network: Office, grade: str, message: str
) -> None:
    tables = spanish_tables(session)
    assert tables.partner is not None
    with pytest.raises(ValidationFailed) as refused:
        gt.convert_by_tables(grade, "es", tables)
    assert message.format(id=tables.partner.id) in refused.value.message


def test_a_percentile_decision_with_a_partner_table_of_ranges(
    session: Session, network: Office, tmp_path: Path
) -> None:
    """End to end: the office imports the Spanish partner's table in bands and its own
    distribution of single German steps; the examiner decides by percentiles on 7,5."""
    case_id = review_case(session, network, grade="7,5", scheme="es")
    partner = session.execute(
        select(Institution.code).where(
            Institution.id == offering_of(session, case_id).institution_id
        )
    ).scalar_one()
    rows = [f'partner,{partner},es,,,,,,2025,"{x}",{p}' for x, p in SPANISH]
    rows += [f"home,uni-musterstadt.de,,,,,,,2025,{x},{p}" for x, p in HOME]
    assert gt.import_file(session, table_file(tmp_path, rows), now=NOW).created == 2
    fire(
        session,
        case_id,
        "recognize",
        actor=network.examiner,
        now=NOW,
        data={"modules": ["INF-ML"], "conversion": "percentile"},
    )
    decision = session.scalar(select(Case.decision).where(Case.id == case_id)) or {}
    conversion = decision["conversion"]
    # 7,5 lies in 7-8,9. Without the failing 0-4,9 (5 %) the passing 95 % are renormalised:
    # 9-10 holds 0 to 8/95 = 8.42 %, 7-8,9 holds 8.42 to (8 + 27)/95 = 36.84 %; its midpoint
    # (8 + 35)/2/95 = 22.63 % lies in the home band of 1.7 (5 + 8 = 13 to 13 + 12 = 25 %).
    # The Bavarian formula: x = 1 + 3 (10 - 7.5)/(10 - 5) = 2.5, a tie, to the better 2.3.
    assert (decision["grade"], conversion["original"], conversion["method"]) == (
        "1.7",
        "7,5",
        "percentile",
    )
    assert conversion["parameters"]["partner_band"] == {
        "label": "7-8,9",
        "lower": "7",
        "upper": "8.9",
    }
    details = conversion["percentile"]
    assert details["band"]["label"] == "7-8,9"
    assert Decimal(details["band"]["lower"]).quantize(Decimal("0.01")) == Decimal("8.42")
    assert Decimal(details["midpoint"]).quantize(Decimal("0.01")) == Decimal("22.63")
    # overlaps: 1.3 by 13 - 8.42 = 4.58, 1.7 by 12, 2.0 by 36.84 - 25 = 11.84 points
    assert details["by_largest_overlap"] == "1.7"
    assert conversion["compared"] == {
        "method": "bavarian",
        "grade": "2.3",
        "difference": "0.6",
        "differs": True,
    }
    assert (
        "7,5 lies in the partner's band 7-8,9 (7 to 8.9, bounds included)"
        in conversion["explanation"]
    )
