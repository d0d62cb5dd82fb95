"""Every import refuses a file nested or sized past reason with a clear answer (400/422 and
the file, line and limit named; exit status 1 on the command line), before any parser
recurses into it, and imports nothing. The imports: the catalogue (API, CLI), the home modules
(CLI), the grading tables (API, CLI); transcripts are XML, bounded by their own depth check
(tests/workflow/test_transcript_import.py); ``--data-file`` gives event data as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from cli.context import exit_status
from models import GradingTable, Module, Offering
from models.db import session_factory
from workflow.errors import RecogError

DEEP = "[" * 100_000
DEEP_IN_ROW = '[{"institution": ' + "[" * 100_000 + "]" * 100_000 + "}]"
HEADERS = {
    "catalogue": "institution,code,term,title",
    "modules": "institution,programme,programme_title,code,title",
    "grading tables": "kind,institution,scheme,reference_year,grade,percentage",
}
API = {"catalogue": "/api/v1/catalogue/import", "grading tables": "/api/v1/grading-tables/import"}
CLI = {
    "catalogue": ("catalog", "import"),
    "modules": ("modules", "import"),
    "grading tables": ("grade", "table", "import"),
}


def _files(kinds: Any) -> list[Any]:
    found = []
    for what, header in HEADERS.items():
        if what not in kinds:
            continue
        found += [
            pytest.param(
                what, "rows.json", DEEP, "line 1: nested deeper than 4 levels", id=f"{what}-deep"
            ),
            pytest.param(
                what,
                "rows.json",
                DEEP_IN_ROW,
                "line 1: nested deeper than 4 levels",
                id=f"{what}-deep-row",
            ),
            pytest.param(
                what,
                "rows.csv",
                f"{header}\nx,{'[' * 200_000}\n",
                "line 2: not readable as CSV: a value is longer than 131072 characters",
                id=f"{what}-csv-cell",
            ),
        ]
    return found


def _cli(cli_in_process: Any, *args: str) -> tuple[str, int]:
    """What the command says and its exit status, as ``recog`` (cli.main.main) turns a
    domain error into one line on stderr."""
    result = cli_in_process(*args)
    if isinstance(result.exception, RecogError):
        return str(result.exception), exit_status(result.exception)
    return result.output, result.exit_code


def _counts(engine: Engine) -> tuple[int, ...]:
    with session_factory(engine)() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(t)) or 0
            for t in (Offering, Module, GradingTable)
        )


@pytest.mark.parametrize(("what", "name", "content", "message"), _files(API))
def test_the_api_refuses_a_deep_or_huge_import(
    clerk_api: Any, engine: Engine, what: str, name: str, content: str, message: str
) -> None:
    before = _counts(engine)
    r = clerk_api.post(API[what], files={"file": (name, content.encode(), "text/plain")})
    assert r.status_code in (400, 422), r.text
    assert f"{name}, {message}" in r.json()["detail"]
    assert _counts(engine) == before


@pytest.mark.parametrize(("what", "name", "content", "message"), _files(CLI))
def test_the_cli_refuses_a_deep_or_huge_import(
    cli_in_process: Any,
    engine: Engine,
    tmp_path: Path,
    what: str,
    name: str,
    content: str,
    message: str,
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    before = _counts(engine)
    said, status = _cli(cli_in_process, *CLI[what], str(path))
    assert status == 1, said
    assert f"{name}, {message}" in said
    assert _counts(engine) == before


def test_the_cli_refuses_deep_event_data(cli_in_process: Any, world: Any, tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text(DEEP, encoding="utf-8")
    case_id = world.cases["enrolled"]
    said, status = _cli(
        cli_in_process,
        "case",
        "fire",
        str(case_id),
        "pass_course",
        "--actor",
        world.users["clerk"],
        "--data-file",
        str(data),
    )
    assert status == 1, said
    assert "data.json: cannot read JSON data: nested too deeply" in said


DEEP_XML = (
    '<?xml version="1.0"?><elmo xmlns="https://github.com/emrex-eu/elmo-schemas/tree/v1">'
    + "<a>" * 100_000
    + "</a>" * 100_000
    + "</elmo>"
)


def test_the_transcript_import_refuses_deep_xml(
    clerk_api: Any, cli_in_process: Any, engine: Engine, tmp_path: Path
) -> None:
    """Transcripts are XML: the same answer for nesting past reason, API and CLI."""
    before = _counts(engine)
    r = clerk_api.post(
        "/api/v1/transcripts",
        files={"file": ("deep.xml", DEEP_XML.encode(), "application/xml")},
    )
    assert r.status_code in (400, 422), r.text
    assert "deep.xml" in r.json()["detail"]
    assert "nested deeper than" in r.json()["detail"]
    path = tmp_path / "deep.xml"
    path.write_text(DEEP_XML, encoding="utf-8")
    said, status = _cli(cli_in_process, "transcript", "import", str(path))
    assert status == 1, said
    assert "nested deeper than" in said
    assert _counts(engine) == before
