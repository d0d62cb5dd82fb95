"""The first week's gaps on the command line: a first command in a data directory that does
not exist yet, a new student without a name, and finding cases, modules and courses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.factories import (
    CaseFactory,
    OfferingFactory,
    PartnerFactory,
    StudentFactory,
    musterstadt,
)


def test_a_missing_data_directory_is_made(
    cli: Callable[..., Any], cli_db: Any, tmp_path: Path
) -> None:
    with cli_db():
        musterstadt()
        case = str(CaseFactory(state="planned").id)
    # The database lives elsewhere (as on PostgreSQL): only the broker needs the directory.
    data = tmp_path / "not" / "yet"
    done = cli("case", "fire", case, "enrol", "--actor", "clerk", RECOG_DATA_DIR=str(data))
    assert "planned -> enrolled" in done.out
    assert "could not queue" not in done.err
    assert (data / "broker.sqlite3").is_file()


def test_a_new_student_needs_a_name(cli: Callable[..., Any], cli_db: Any) -> None:
    with cli_db():
        musterstadt()
        OfferingFactory(code="IT-ML")
    refused = cli(
        "case", "open", "--student", "999", "--course", "IT-ML", "--actor", "clerk", check=False
    )
    assert refused.code == 1
    assert refused.err.strip() == (
        "error: there is no student 999 yet: a new student needs a name (--name) and an "
        "e-mail address (--email)"
    )
    assert cli("case", "list", "--json").json() == []


def test_finding_cases_modules_and_courses(cli: Callable[..., Any], cli_db: Any) -> None:
    with cli_db():
        musterstadt()
        italy = PartnerFactory(code="unitol.it")
        ml = OfferingFactory(
            institution=italy,
            code="IT-ML",
            learning_outcomes="Train and evaluate models",
            assessment_type="written exam and lab project",
        )
        other = OfferingFactory(code="FI-Q")
        jurgen = CaseFactory(student=StudentFactory(name="Jürgen Weiß"), offering=ml).id
        CaseFactory(student=StudentFactory(name="Jürgen Anders"), offering=other)
        CaseFactory(student=StudentFactory(name="Ada Lovelace"), offering=ml)
    found = cli("case", "list", "--search", "JÜRGEN weiß", "--json").json()
    assert [c["id"] for c in found] == [jurgen]
    both = cli("case", "list", "-q", "jürgen", "--partner", "unitol.it", "--json").json()
    assert [c["id"] for c in both] == [jurgen]
    by_course = cli("case", "list", "--course", "IT-ML").out
    assert "Ada Lovelace" in by_course
    assert "Anders" not in by_course
    modules = cli("modules", "list", "--json").json()
    assert {m["code"] for m in modules} >= {"INF-ML", "INF-CC"}
    assert modules[0]["programme"] == "INF-BSC"
    courses = cli("catalog", "list", "--partner", "unitol.it", "--json").json()
    assert [
        (c["code"], c["learning_outcomes"], c["assessment_type"], c["grading_scheme"])
        for c in courses
    ] == [("IT-ML", "Train and evaluate models", "written exam and lab project", "it")]
