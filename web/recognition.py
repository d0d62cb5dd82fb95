"""What the API and the pages share for recognition work: reading an uploaded transcript,
the import report, the grade conversions shown side by side, and the ELMO export.

Routes live in ``web.api`` and ``web.pages``; this module holds no route and touches the
database only through ``workflow``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any
from urllib.parse import quote

from fastapi import UploadFile
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.errors import RecogError
from models import Case
from web.problems import Problem
from workflow import queries
from workflow.actors import Actor
from workflow.errors import Conflict, ValidationFailed
from workflow.grades import PercentTable, compare, convert, percentile
from workflow.grading_tables import CaseTables, convert_by_tables, tables_for_case
from workflow.transcript_import import ImportReport

MAX_TRANSCRIPT_BYTES = 20 * 1024 * 1024
TRANSCRIPT_TYPES = ("application/xml", "text/xml")


def read_transcript(file: UploadFile) -> bytes:
    """The bytes of an uploaded transcript: XML by its declared type, within the size limit.
    Whether it is a well-formed, valid ELMO or EWP document the parser decides (and names
    the file, line and element when it is not)."""
    media_type = (file.content_type or "").split(";")[0].strip().lower()
    if media_type not in TRANSCRIPT_TYPES:
        raise Problem(
            415,
            "Unsupported Media Type",
            f"{media_type or 'no type'} is not "
            f"accepted; upload the transcript as {' or '.join(TRANSCRIPT_TYPES)} "
            "(ELMO 1.7, ELMO 2.0 or an EWP transcript-of-records response)",
            code="media_type",
        )
    content = file.file.read(MAX_TRANSCRIPT_BYTES + 1)
    if len(content) > MAX_TRANSCRIPT_BYTES:
        raise Problem(
            413,
            "Content Too Large",
            f"a transcript may have at most {MAX_TRANSCRIPT_BYTES // (1024 * 1024)} MB",
            code="too_large",
        )
    return content


def report_json(report: ImportReport, content: bytes) -> dict[str, Any]:
    counts = {
        status: report.count(status) for status in ("matched", "unmatched", "ambiguous", "skipped")
    }
    return {
        "file": report.filename,
        "format": report.format,
        "sha256": hashlib.sha256(content).hexdigest(),
        "counts": counts,
        "results": [{"case": None, "note": None, **r} for r in report.results],
    }


# --- grade conversion side by side -------------------------------------------------------------


def grading_tables(session: Session, detail: dict[str, Any]) -> CaseTables:
    """The partner's grading table for the case's course and the office's own grade
    distribution, the most specific stored ones (``workflow.grading_tables``); ``missing()``
    says what is not stored."""
    return tables_for_case(session, int(detail["id"]))


def conversions(
    detail: dict[str, Any],
    *,
    rounding: Any,
    tables: CaseTables | tuple[PercentTable, PercentTable] | None,
) -> dict[str, Any] | None:
    """The partner grade converted by the modified Bavarian formula and, when the grading
    tables are known, by percentiles; flagged when the two differ by 0.3 or more. None when
    the case has no partner grade yet. ``methods`` lists what the examiner may choose."""
    result = detail.get("result") or {}
    grade = result.get("grade")
    scheme = result.get("scheme") or detail["course"]["grading_scheme"]
    if not grade or not scheme:
        return None
    known = tables.known if isinstance(tables, CaseTables) else tables is not None
    view: dict[str, Any] = {
        "original": str(grade),
        "scheme": str(scheme),
        "bavarian": None,
        "bavarian_error": None,
        "percentile": None,
        "percentile_error": None,
        "tables_known": known,
        "tables": None,
        "tables_missing": None,
        "difference": None,
        "differs": False,
        "suggested": None,
        "methods": [],
    }
    by_formula = None
    try:
        by_formula = convert(str(grade), str(scheme), rounding)
    except (RecogError, ValueError, KeyError) as exc:
        view["bavarian_error"] = str(exc)
    else:
        view["bavarian"] = by_formula.to_dict()
        view["formula"] = next((s for s in by_formula.explanation if s.startswith("x = ")), None)
        view["suggested"] = by_formula.grade
        view["methods"].append("bavarian")
    by_table = None
    try:
        if isinstance(tables, CaseTables):
            view["tables"] = {
                "partner": tables.partner.to_dict() if tables.partner else None,
                "home": tables.home.to_dict() if tables.home else None,
            }
            if tables.known:
                by_table = convert_by_tables(str(grade), str(scheme), tables)
            else:
                view["tables_missing"] = tables.missing()
        elif tables is not None:
            by_table = percentile(str(grade), tables[0], tables[1], scheme=str(scheme))
    except RecogError as exc:
        view["percentile_error"] = str(exc)
    if by_table is not None:
        view["percentile"] = by_table.to_dict()
        view["methods"].append("percentile")
        if by_formula is not None:
            both = compare(by_formula, by_table)
            view["differs"] = both.differs
            view["difference"] = None if both.difference is None else str(both.difference)
    return view


# --- ELMO export -------------------------------------------------------------------------------


def elmo_export(
    session: Session, case_id: int, *, actor: Actor, now: dt.datetime, settings: Any, store: Any
) -> Response:
    """The case's decision as an ELMO 2.0 download (404 for a case the actor may not see,
    409 while it is undecided)."""
    from workflow.elmo_export import export_decision
    from workflow.notice_issue import export_inputs

    queries.case_status(session, case_id, actor=actor, now=now)  # 404 before anything else
    decision = session.scalar(select(Case.decision).where(Case.id == case_id))
    if not decision:
        raise Conflict(
            f"case {case_id} has no decision yet; only a decided case can be exported as ELMO"
        )
    try:
        content = export_decision(**export_inputs(session, case_id, settings=settings, store=store))
    except FileNotFoundError:
        raise ValidationFailed(
            f"case {case_id}: the stored notice is missing from the "
            "document store; ask the operator"
        ) from None
    name = f"recognition-case-{case_id}.xml"
    return Response(
        content,
        media_type="application/xml",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"; '
            f"filename*=UTF-8''{quote(name, safe='')}",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "no-store",
        },
    )
