"""What the API and the pages share for recognition work: reading an uploaded transcript,
the import report and the ELMO export (the grade conversions side by side are
``workflow.grading.tables.case_side_by_side``, for the CLI too).

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
from sqlalchemy.orm import Session

from web.problems import Problem
from workflow import Actor, ImportReport, export_decision_document

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


# --- ELMO export -------------------------------------------------------------------------------


def elmo_export(
    session: Session, case_id: int, *, actor: Actor, now: dt.datetime, settings: Any, store: Any
) -> Response:
    """The case's decision as an ELMO 2.0 download (``workflow.cases.casefile``: 404 for a case the
    actor may not see, 409 while it is undecided)."""
    content = export_decision_document(
        session, case_id, actor=actor, settings=settings, store=store
    )
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
