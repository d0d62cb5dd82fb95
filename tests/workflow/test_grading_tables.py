"""Grading tables: stored and migrated, ordered best first whatever order a partner sends,
filled by the transcript import (EWP gradeConversionTable, ELMO resultDistribution), imported
from files all or nothing, found most specific first for a case, and used by a decision that
stores the chosen method with its tables."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Case, GradingTable, Institution, Module, Offering, Programme
from models.db import make_engine, session_factory
from models.migrate import current_revision, downgrade, head_revision, upgrade
from workflow import grading_tables as gt
from workflow.catalog import add_institution, import_catalogue
from workflow.demo import Network, create_case, seed_network
from workflow.documents import MemoryStore
from workflow.elmo_export import export_decision
from workflow.engine import fire
from workflow.errors import GuardFailed, ValidationFailed
from workflow.imports import ImportRejected
from workflow.notices import render_notice_html
from workflow.transcript_import import import_transcript
from workflow.transcripts import parse_transcript

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "elmo"
EWP = REFERENCE / "ewp-imobility-tors-get-response-example.xml"
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
# grade-conversion.md's worked example: the partner's table for ISCED 0612 (sent worst first,
# as the EWP example does) and a home distribution.
PARTNER = [("F", "0.8"), ("E", "24.7"), ("D", "26.3"), ("C", "36.3"), ("B", "9.9"), ("A", "2.0")]
HOME = [("1.0", 5), ("1.3", 8), ("1.7", 12), ("2.0", 15), ("2.3", 15), ("2.7", 13),
        ("3.0", 12), ("3.3", 8), ("3.7", 7), ("4.0", 5)]


def partner_grades(rows: list[tuple[str, str]] = PARTNER) -> list[gt.Grade]:
    return gt.partner_grades([(label, Decimal(p), None) for label, p in rows], ["ects"])[1]


def home_grades(rows: list[tuple[str, int]] = HOME) -> list[gt.Grade]:
    return gt.home_grades([(label, Decimal(p), None) for label, p in rows])


def offering_of(session: Session, case_id: int) -> Offering:
    return session.execute(select(Offering).join(Case, Case.offering_id == Offering.id)
                           .where(Case.id == case_id)).scalar_one()


def review_case(session: Session, net: Network, *, grade: str = "C", scheme: str = "ects",
                matriculation: str = "G1") -> int:
    """A case in review whose partner grade is ``grade`` on ``scheme``."""
    case_id = create_case(session, net, target="in_review", term="recent",
                          matriculation=matriculation, name="Grace Table",
                          email=f"{matriculation}@example.org", partner=1, now=NOW)
    result = dict(session.scalar(select(Case.result).where(Case.id == case_id)) or {})
    session.execute(update(Case).where(Case.id == case_id)
                    .values(result={**result, "grade": grade, "scheme": scheme}))
    return case_id


# --- storage and migration ---------------------------------------------------------------------

def refused(session: Session, row: GradingTable) -> None:
    """The database itself refuses ``row``; the session goes on."""
    savepoint = session.begin_nested()
    session.add(row)
    with pytest.raises(IntegrityError):
        session.flush()
    savepoint.rollback()


def test_a_table_is_created_replaced_or_left_unchanged(session: Session, network: Network,
                                                        ) -> None:
    partner = session.execute(select(Institution.id).where(Institution.code == "unitol.it")
                              ).scalar_one()
    key = {"kind": "partner", "institution_id": partner, "scheme": "ects",
           "reference_year": 2025, "source": "manual", "isced_code": "0612", "now": NOW}
    first, status = gt.store_table(session, grades=partner_grades(), **key)  # type: ignore[arg-type]
    assert status == "created"
    assert gt.store_table(session, grades=partner_grades(), **key) == (first, "unchanged")  # type: ignore[arg-type]
    changed = [("A", "3.0"), ("B", "8.9"), ("C", "36.3"), ("D", "26.3"), ("E", "24.7"),
               ("F", "0.8")]
    assert gt.store_table(session, grades=partner_grades(changed), **key) == (first, "updated")  # type: ignore[arg-type]
    # Another year is another table; the key is unique on both databases.
    other, status = gt.store_table(session, grades=partner_grades(),
                                   **{**key, "reference_year": 2024})  # type: ignore[arg-type]
    assert (other != first, status) == (True, "created")
    row = session.get(GradingTable, first)
    assert row is not None
    assert (row.scope, row.isced_code, row.source) == ("isced:0612", "0612", "manual")
    assert [g["label"] for g in row.grades] == ["A", "B", "C", "D", "E", "F"]
    assert row.grades[-1] == {"label": "F", "percentage": "0.8", "failing": True}
    refused(session, GradingTable(kind="partner", institution_id=partner, scheme="ects",
                                  scope="isced:0612", isced_code="0612", reference_year=2025,
                                  source="manual", grades=[], created_at=NOW, updated_at=NOW))


def test_the_database_refuses_a_table_with_two_reference_groups(session: Session,
                                                                  network: Network) -> None:
    module = session.execute(select(Module.id).where(Module.code == "INF-ML")).scalars().first()
    refused(session, GradingTable(kind="home", institution_id=network.home_id, scheme="de",
                                  scope="module:x", isced_code="0612", module_id=module,
                                  reference_year=2025, source="manual", grades=[],
                                  created_at=NOW, updated_at=NOW))
    refused(session, GradingTable(kind="partner", institution_id=network.home_id, scheme="de",
                                  scope="module:x", module_id=module, reference_year=2025,
                                  source="manual", grades=[], created_at=NOW, updated_at=NOW))


def test_migration_0005_goes_down_and_up_keeping_the_data(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'tables.sqlite3'}")
    upgrade(engine)
    with session_factory(engine)() as s, s.begin():
        net = seed_network(s, today=NOW.date())
        s.execute(update(Offering).values(isced_code="0613"))
        gt.store_table(s, kind="home", institution_id=net.home_id, scheme="de",
                       reference_year=2025, source="manual", grades=home_grades(), now=NOW)
        offerings = s.scalar(select(func.count()).select_from(Offering))
    downgrade(engine, "0004")
    assert current_revision(engine) == "0004"
    with engine.connect() as conn:
        assert "grading_tables" not in {r[0] for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
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
        ("A", False), ("B", False), ("C", False), ("D", False), ("E", False), ("F", True)]
    italian = [("18", Decimal(10), None), ("30", Decimal(5), None), ("17", Decimal(5), None),
               ("24", Decimal(80), None)]
    scheme, grades = gt.partner_grades(italian, ["it"])
    assert scheme == "it"
    assert [(g.label, g.failing) for g in grades] == [
        ("30", False), ("24", False), ("18", False), ("17", True)]
    german = gt.home_grades([("4", Decimal(50), None), ("1,0", Decimal(50), None)])
    assert [g.label for g in german] == ["1.0", "4.0"]


@pytest.mark.parametrize(("rows", "schemes", "message"), [
    ([("Less than 20", "10"), ("20-39.9", "90")], ["pl"], "not a number"),
    ([("31", "50"), ("30", "50")], ["it"], "better than the best grade 30"),
    ([("A", "50"), ("B", "40")], ["ects"], "add up to 90"),
    ([("A", "0"), ("F", "100")], ["ects"], "no passing grade"),
    ([("passed", "100")], ["passfail"], "pass/fail: it has no grades to compare"),
])
def test_a_table_that_cannot_be_ordered_or_does_not_add_up_is_refused(
        rows: list[tuple[str, str]], schemes: list[str], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        gt.partner_grades([(x, Decimal(p), None) for x, p in rows], schemes)


def test_a_home_distribution_holds_german_steps_only() -> None:
    with pytest.raises(ValidationFailed, match=r"'5\.0' is not a German grade step"):
        gt.home_grades([("1.0", Decimal(95), None), ("5.0", Decimal(5), None)])


# --- the transcript import fills them ----------------------------------------------------------

def warsaw(session: Session, *, scheme: str = "pl", code: str = "1000-217bMRJ") -> int:
    partner = session.execute(select(Institution.id).where(Institution.code == "uw.edu.pl")
                              ).scalar()
    if partner is None:
        partner = add_institution(session, code="uw.edu.pl", name="University of Warsaw",
                                  country="PL", kind="partner", erasmus_code="PL WARSZAW01").id
    session.add(Offering(institution_id=partner, code=code, term="2015-W",
                         title="HTML", ects=6, language="pl", eqf_level=6,
                         learning_outcomes="HTML", assessment_type="exam",
                         participation_mode="online", start_date=dt.date(2015, 10, 1),
                         end_date=dt.date(2016, 2, 28), grading_scheme=scheme))
    session.flush()
    return partner


def test_the_ewp_grade_conversion_table_is_kept(session: Session, network: Network) -> None:
    partner = warsaw(session)
    report = import_transcript(session, EWP, store=MemoryStore(), now=NOW)
    kept = [t for t in report.tables if t["table"]]
    assert [(t["status"], t["what"]) for t in kept] == [
        ("created", "EWP table for ISCED-F 0612, scheme ects")]
    row = session.get(GradingTable, kept[0]["table"])
    assert row is not None
    assert (row.kind, row.institution_id, row.scheme, row.scope, row.reference_year,
            row.source, row.filename) == ("partner", partner, "ects", "isced:0612", 2015, "ewp",
                                          EWP.name)
    assert [(g["label"], g["percentage"], g["failing"]) for g in row.grades] == [
        ("A", "2.0", False), ("B", "9.9", False), ("C", "36.3", False), ("D", "26.3", False),
        ("E", "24.7", False), ("F", "0.8", True)]
    # Its course had no code the catalogue knows: its distribution waits for nobody.
    skipped = [t for t in report.tables if t["status"] == "skipped"]
    assert "no course offering of the partner has this code" in skipped[0]["note"]
    again = import_transcript(session, EWP, store=MemoryStore(), now=NOW)
    assert [t["status"] for t in again.tables if t["table"]] == ["unchanged"]
    assert session.scalar(select(func.count()).select_from(GradingTable)) == 1


def test_an_unknown_partner_keeps_no_table(session: Session, network: Network) -> None:
    report = import_transcript(session, EWP, store=MemoryStore(), now=NOW)
    assert report.tables == [{"table": None, "status": "skipped", "what": "grading tables",
                              "note": "unknown partner institution uw.edu.pl"}]
    assert session.scalar(select(func.count()).select_from(GradingTable)) == 0


def test_a_result_distribution_becomes_its_offerings_table(session: Session,
                                                           network: Network) -> None:
    """The EWP example with the course's own code: its offering learns its ISCED-F field and
    keeps the course's result distribution (counts, failed results included)."""
    partner = warsaw(session, scheme="ects", code="HTML-1")
    text = EWP.read_text(encoding="utf-8").replace(
        '<identifier type="ewp-los-id">CR/19560ed8-5183-4842-9bb0-2b7e23f56522</identifier>',
        '<identifier type="local">HTML-1</identifier>')
    report = import_transcript(session, text.encode(), filename="tor.xml", store=MemoryStore(),
                               now=NOW)
    offering = session.execute(select(Offering).where(Offering.code == "HTML-1")).scalar_one()
    assert offering.isced_code == "0612"
    assert {t["status"] for t in report.tables} == {"created", "updated"}
    row = session.execute(select(GradingTable).where(
        GradingTable.scope == f"offering:{offering.id}")).scalar_one()
    assert (row.institution_id, row.scheme, row.source, row.reference_year, row.offering_id) \
        == (partner, "ects", "result_distribution", 2015, offering.id)
    assert [(g["label"], g["count"], g["failing"]) for g in row.grades] == [
        ("A", 7, False), ("B", 37, False), ("C", 135, False), ("D", 98, False),
        ("E", 92, False), ("F", 3, True)]
    assert row.grades[2]["percentage"] == "36.29"  # 135 of 372


# --- files entered by the office ---------------------------------------------------------------

HEADER = "kind,institution,scheme,isced,course,term,programme,module,reference_year,grade,"


def table_file(tmp_path: Path, rows: list[str], column: str = "percentage") -> Path:
    path = tmp_path / "tables.csv"
    path.write_text(HEADER + column + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_file_imports_partner_tables_and_home_distributions(
        session: Session, network: Network, tmp_path: Path) -> None:
    term = offering_of(session, review_case(session, network)).term
    rows = [f"partner,unitol.it,ects,0612,,,,,2025,{x},{p}" for x, p in PARTNER]
    rows += [f"partner,unitol.it,it,,IT-01,{term},,,2025,{x},{p}"
             for x, p in [("30", "10"), ("25", "60"), ("18", "30")]]
    rows += [f"home,uni-musterstadt.de,,,,,INF-BSC,INF-ML,2025,{x},{p}" for x, p in HOME]
    rows += [f"home,uni-musterstadt.de,de,,,,INF-BSC,,2024,{x},{p}" for x, p in HOME]
    summary = gt.import_file(session, table_file(tmp_path, rows), now=NOW)
    assert (summary.created, summary.updated, summary.unchanged) == (4, 0, 0)
    listed = {(t["kind"], t["scope_label"], t["reference_year"]): t
              for t in gt.list_tables(session)}
    assert set(listed) == {("partner", "ISCED-F 0612", 2025),
                           ("partner", f"course IT-01 ({term})", 2025),
                           ("home", "module INF-ML", 2025), ("home", "programme INF-BSC", 2024)}
    assert listed[("partner", "ISCED-F 0612", 2025)]["shares"].startswith("A: 2.0 · B: 9.9")
    assert all(t["source"] == "manual" for t in listed.values())
    again = gt.import_file(session, table_file(tmp_path, rows), now=NOW)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)


def test_counts_become_percentages(session: Session, network: Network, tmp_path: Path) -> None:
    rows = [f"home,uni-musterstadt.de,,,,,,,2025,{x},{n}" for x, n in
            [("1.0", 1), ("2.0", 2), ("3.0", 1)]]
    gt.import_file(session, table_file(tmp_path, rows, "count"), now=NOW)
    (table,) = gt.list_tables(session, kind="home")
    assert [(g["label"], g["percentage"], g["count"]) for g in table["grades"]] == [
        ("1.0", "25.00", 1), ("2.0", "50.00", 2), ("3.0", "25.00", 1)]


def test_bad_rows_are_refused_with_line_and_field_and_nothing_is_imported(
        session: Session, network: Network, tmp_path: Path) -> None:
    rows = [
        "partner,unitol.it,ects,0612,,,,,2025,A,60",           # line 2
        "partner,unitol.it,ects,0612,,,,,2025,A,40",           # line 3: A twice
        "partner,nowhere.example,ects,,,,,,2025,A,100",        # line 4: unknown institution
        "partner,unitol.it,,,,,,,2025,A,100",                  # line 5: no scheme
        "home,uni-musterstadt.de,,,,,,,20x5,1.0,100",          # line 6: bad year
        "home,uni-musterstadt.de,,,,,,NOPE,2026,1.0,100",      # line 7: unknown module
        "home,uni-b.example,,,,,,,2026,1.0,100",               # line 8: unknown institution
        "partner,tdu.fi,fi,0612,,,,,2026,6,100",               # line 9: better than best
        "partner,unl.fr,fr,061,FR-01,2026-01,,,2026,12,100",   # line 10: two groups
        "home,uni-musterstadt.de,,,,,,,2027,1.0,30",           # line 11: adds up to 30
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
        session: Session, network: Network, tmp_path: Path) -> None:
    seed_network(session, today=NOW.date() - dt.timedelta(days=730), home_code="uni-b.example")
    rows = [f"home,uni-b.example,,,,,,,2025,{x},{p}" for x, p in HOME]
    with pytest.raises(ImportRejected, match=r"uni-b\.example is not your institution"):
        gt.import_file(session, table_file(tmp_path, rows), now=NOW,
                       home_institution_id=network.home_id)


def test_the_catalogue_takes_an_isced_code(session: Session, network: Network,
                                           tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(
        "institution,code,term,title,ects,language,eqf_level,learning_outcomes,"
        "assessment_type,participation_mode,start_date,end_date,grading_scheme,isced_code\n"
        "tdu.fi,FI-900,2027-03,Quantum,5.0,en,7,Qubits,exam,online,2027-03-01,2027-06-01,fi,"
        "0613\n", encoding="utf-8")
    import_catalogue(session, path)
    assert session.execute(select(Offering.isced_code).where(Offering.code == "FI-900")
                           ).scalar_one() == "0613"


# --- finding a case's tables -------------------------------------------------------------------

def test_the_most_specific_table_wins(session: Session, network: Network) -> None:
    case_id = review_case(session, network)
    offering = offering_of(session, case_id)
    offering.isced_code = "0612"
    partner = offering.institution_id
    module, programme = session.execute(
        select(Module.id, Module.programme_id).join(Case.targets).where(Case.id == case_id)
    ).one()
    assert not gt.tables_for_case(session, case_id).known
    assert "no partner grading table for unitol.it on scheme ects" in \
        gt.tables_for_case(session, case_id).missing()

    def store(kind: str, year: int = 2025, source: str = "manual", **scope: object) -> int:
        institution = partner if kind == "partner" else network.home_id
        grades = partner_grades() if kind == "partner" else home_grades()
        return gt.store_table(session, kind=kind, institution_id=institution,
                              scheme="ects" if kind == "partner" else "de",
                              reference_year=year, source=source, grades=grades, now=NOW,
                              **scope)[0]  # type: ignore[arg-type]

    def found() -> tuple[int | None, int | None]:
        tables = gt.tables_for_case(session, case_id)
        return (tables.partner.id if tables.partner else None,
                tables.home.id if tables.home else None)

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


def test_a_table_on_another_scheme_is_not_used(session: Session, network: Network) -> None:
    case_id = review_case(session, network, grade="27", scheme="it")
    gt.store_table(session, kind="partner", institution_id=offering_of(session, case_id)
                   .institution_id, scheme="ects", reference_year=2025, source="manual",
                   grades=partner_grades(), now=NOW)
    assert gt.tables_for_case(session, case_id).partner is None


# --- the decision ------------------------------------------------------------------------------

def tables_for(session: Session, case_id: int) -> tuple[int, int]:
    offering = offering_of(session, case_id)
    partner_id = gt.store_table(session, kind="partner", institution_id=offering.institution_id,
                                scheme="ects", reference_year=2025, source="manual",
                                grades=partner_grades(), now=NOW)[0]
    programme = session.execute(select(Programme.id).where(
        Programme.institution_id == offering_of(session, case_id).institution_id)).first()
    assert programme is None  # a partner has no programmes: the home table is the office's
    home_id = gt.store_table(session, kind="home", institution_id=session.scalar(
        select(Case.institution_id).where(Case.id == case_id)) or 0, scheme="de",
        reference_year=2024, source="manual", grades=home_grades(), now=NOW)[0]
    return partner_id, home_id


def test_a_percentile_decision_stores_its_method_and_tables(session: Session,
                                                           network: Network) -> None:
    case_id = review_case(session, network)
    partner_id, home_id = tables_for(session, case_id)
    fired = fire(session, case_id, "recognize", actor=network.examiner, now=NOW,
                 data={"modules": ["INF-ML"], "conversion": "percentile"})
    decision = session.scalar(select(Case.decision).where(Case.id == case_id)) or {}
    conversion = decision["conversion"]
    assert decision["grade"] == "2.0"  # C's band midpoint 30.3 % lies in the home band of 2.0
    assert (conversion["original"], conversion["scheme"], conversion["method"],
            conversion["grade"]) == ("C", "ects", "percentile", "2.0")
    parameters = conversion["parameters"]
    assert (parameters["partner_table_id"], parameters["home_table_id"]) == (partner_id, home_id)
    assert parameters["partner_table"]["C"] == "36.3"
    assert parameters["home_table"]["2.0"] == "15"
    assert parameters["failing"] == ["F"]
    assert parameters["tables"]["partner"] == {
        "id": partner_id, "institution": "unitol.it", "scheme": "ects", "scope": "all",
        "group": "", "reference_year": 2025, "source": "manual"}
    assert parameters["tables"]["home"]["reference_year"] == 2024
    assert conversion["compared"] == {"method": "bavarian", "grade": "2.3", "difference": "0.3",
                                      "differs": True}
    assert conversion["explanation"][0].startswith(f"partner table #{partner_id}: unitol.it")
    assert fired.data["conversion"]["method"] == "percentile"  # the audit trail has it too
    # The notice says which distributions were compared.
    html = render_notice_html(
        event="recognize", decision=decision, data={}, language="de", case_id=case_id,
        student_name="Grace Table", matriculation_number="G1",
        course={"title": "Cloud", "code": "IT-02", "partner_name": "UniTol", "term": "2026",
                "ects": "5", "grade_as_printed": "C", "scheme": "ects"},
        institution={"name": "Universität Musterstadt", "office_email": "pa@example.org",
                     "address_lines": ["Str. 1"], "court": None},
        issued_at=NOW, appeal_ends_at=NOW + dt.timedelta(days=30), zone=ZoneInfo("Europe/Berlin"))
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "Prozentrangverfahren" in text
    assert "Notenverteilung der Partnerhochschule: gesamte Hochschule, Bezugsjahr 2025" in text
    assert "Notenverteilung der Hochschule: gesamte Hochschule, Bezugsjahr 2024" in text
    # The ELMO export carries it and stays valid against the v2.0 schema.
    exported = export_decision(
        decision=decision, case_id=case_id, student_name="Grace Table",
        matriculation_number="G1", course={"title": "Cloud", "code": "IT-02",
                                            "partner_name": "UniTol", "term": "2026",
                                            "ects": "5", "grade_as_printed": "C",
                                            "scheme": "ects"},
        institution={"name": "Universität Musterstadt", "schac": "uni-musterstadt.de",
                     "country": "DE"},
        partner={"name": "UniTol", "schac": "unitol.it", "country": "IT"}, issued_at=NOW,
        zone=ZoneInfo("Europe/Berlin"))
    assert b"method percentile" in exported
    assert f"partner_table_id = {partner_id}".encode() in exported
    assert parse_transcript(exported, filename="export.xml").results


def test_the_bavarian_formula_stays_the_default(session: Session, network: Network) -> None:
    case_id = review_case(session, network)
    tables_for(session, case_id)
    fire(session, case_id, "recognize", actor=network.examiner, now=NOW,
         data={"modules": ["INF-ML"]})
    decision = session.scalar(select(Case.decision).where(Case.id == case_id)) or {}
    assert (decision["conversion"]["method"], decision["grade"]) == ("bavarian", "2.3")


def test_a_chosen_grade_is_kept_beside_the_percentile_conversion(session: Session,
                                                                 network: Network) -> None:
    case_id = review_case(session, network)
    tables_for(session, case_id)
    fire(session, case_id, "recognize", actor=network.examiner, now=NOW,
         data={"modules": ["INF-ML"], "conversion": "percentile", "grade": "1.7"})
    decision = session.scalar(select(Case.decision).where(Case.id == case_id)) or {}
    assert (decision["grade"], decision["conversion"]["grade"]) == ("1.7", "2.0")


@pytest.mark.parametrize(("conversion", "message"), [
    ("percentile", "the percentile conversion needs grading tables: no partner grading table "
                   "for unitol.it on scheme ects"),
    ("ranking", "conversion names the method of grade conversion: bavarian or percentile"),
    ({"method": "percentile", "grade": "1.0"}, "conversion names the method"),
])
def test_a_percentile_decision_without_tables_or_with_a_made_up_method_is_refused(
        session: Session, network: Network, conversion: object, message: str) -> None:
    case_id = review_case(session, network)
    with pytest.raises(GuardFailed, match=message):
        fire(session, case_id, "recognize", actor=network.examiner, now=NOW,
             data={"modules": ["INF-ML"], "conversion": conversion})
    assert session.scalar(select(Case.state).where(Case.id == case_id)) == "in_review"
