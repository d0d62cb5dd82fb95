"""Catalogue and module imports: every bad row reported with line and field, nothing imported
if any row is bad, re-import updates in place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Module, Offering
from tests.factories import PartnerFactory
from workflow.errors import ValidationFailed
from workflow.imports import ImportRejected
from workflow.office.catalog import import_catalogue, import_modules

HEADER = (
    "institution,code,term,title,ects,language,eqf_level,learning_outcomes,"
    "assessment_type,participation_mode,quality_assurance,start_date,end_date,exam_date,"
    "grading_scheme\n"
)
GOOD = (
    "tdu.fi,FI-900,2027-03,Quantum Computing,5.0,en,7,Explain qubits,written exam,online,"
    "FINEEC,2027-03-01,2027-06-01,2027-05-20,fi\n"
)


@pytest.fixture(autouse=True)
def partner(session: Session) -> None:
    """The Finnish partner the files name."""
    PartnerFactory(code="tdu.fi", name="Tampere Digital University", country="FI")


def write(tmp_path: Path, body: str, name: str = "catalog.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def offerings(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Offering)) or 0


def test_good_file_imports_and_reimport_updates(session: Session, tmp_path: Path) -> None:
    before = offerings(session)
    summary = import_catalogue(session, write(tmp_path, GOOD + GOOD.replace("FI-900", "FI-901")))
    assert (summary.created, summary.updated) == (2, 0)
    again = import_catalogue(
        session, write(tmp_path, GOOD.replace("Quantum Computing", "Quantum Computing II"))
    )
    assert (again.created, again.updated) == (0, 1)
    assert offerings(session) == before + 2
    title = session.scalar(select(Offering.title).where(Offering.code == "FI-900"))
    assert title == "Quantum Computing II"


def test_json_import(session: Session, tmp_path: Path) -> None:
    row = dict(zip(HEADER.strip().split(","), GOOD.strip().split(","), strict=True))
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"offerings": [row]}), encoding="utf-8")
    assert import_catalogue(session, path).created == 1


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (GOOD.replace(",Quantum Computing,", ",,"), "line 3, field title: is empty"),
        (GOOD.replace(",5.0,", ",-5,"), "line 3, field ects: Input should be greater than 0"),
        (GOOD.replace("tdu.fi", "nowhere.edu"), "line 3, field institution: unknown institution"),
        (GOOD.replace(",7,", ",11,"), "line 3, field eqf_level"),
        (GOOD.replace("2027-06-01", "2027-01-01"), "end_date 2027-01-01 is before start_date"),
        (GOOD.replace("2027-05-20", "someday"), "line 3, field exam_date"),
        (GOOD.replace("tdu.fi", "uni-musterstadt.de"), "is a home institution"),
        (
            GOOD.replace(",fi\n", ",it\n"),
            "line 3, field grading_scheme: grading scheme 'it' is the national scale of IT, "
            "not of the partner's country FI; use fi or ects or passfail",
        ),
        (
            GOOD.replace("Explain qubits", "x" * 20_001),
            "line 3, field learning_outcomes: String should have at most 20000 characters",
        ),
        (
            GOOD.replace("FINEEC", "q" * 20_001),
            "line 3, field quality_assurance: String should have at most 20000 characters",
        ),
        (
            GOOD + GOOD,
            "line 4, field code: duplicate course tdu.fi/FI-900/2027-03 (also at line 3)",
        ),
    ],
)
def test_bad_row_is_named_and_nothing_is_imported(
    session: Session,
    tmp_path: Path,
    row: str,
    expected: str,
) -> None:
    before = offerings(session)
    good_first = GOOD.replace("FI-900", "FI-777")
    with pytest.raises(ImportRejected) as err:
        import_catalogue(session, write(tmp_path, good_first + row))
    assert expected in str(err.value)
    assert "catalog.csv, line" in str(err.value)
    assert "nothing imported" in str(err.value)
    assert offerings(session) == before


def test_all_problems_are_reported_at_once(session: Session, tmp_path: Path) -> None:
    body = GOOD.replace(",5.0,", ",-1,") + GOOD.replace("FI-900", "FI-2").replace(",7,", ",0,")
    with pytest.raises(ImportRejected) as err:
        import_catalogue(session, write(tmp_path, body))
    assert len(err.value.errors) == 2
    assert "line 2, field ects" in str(err.value)
    assert "line 3, field eqf_level" in str(err.value)


def test_wrong_encoding_is_refused_with_its_line(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        (HEADER + GOOD + GOOD.replace("Quantum", "Qüantum").replace("FI-900", "FI-9")).encode(
            "latin-1"
        )
    )
    before = offerings(session)
    with pytest.raises(ValidationFailed, match=r"latin1.csv, line 3: not UTF-8 text"):
        import_catalogue(session, path)
    assert offerings(session) == before


def test_missing_column_and_unknown_type(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("institution,code\ntdu.fi,X\n", encoding="utf-8")
    with pytest.raises(ImportRejected, match="line 2, field term: is missing"):
        import_catalogue(session, path)
    other = tmp_path / "catalog.xlsx"
    other.write_bytes(b"PK")
    with pytest.raises(ValidationFailed, match="unknown file type"):
        import_catalogue(session, other)


def test_modules_import_and_update(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "modules.csv"
    path.write_text(
        "institution;programme;programme_title;code;title;ects;regulation_version\n"
        "uni-musterstadt.de;DS-MSC;Data Science (M.Sc.);DS-01;Statistik;6;PO 2025\n"
        "uni-musterstadt.de;INF-BSC;Informatik (B.Sc.);INF-ML;Maschinelles Lernen;6;PO 2025\n",
        encoding="utf-8",
    )
    summary = import_modules(session, path)
    assert (summary.created, summary.updated) == (1, 1)
    ects = session.scalar(select(Module.ects).where(Module.code == "INF-ML"))
    assert str(ects) == "6.0"
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "institution,programme,programme_title,code,title,ects,regulation_version\n"
        "tdu.fi,X,X,X,X,5,PO\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected, match="is a partner; modules belong to a home"):
        import_modules(session, bad)
