"""What the API and the pages share for recognition work: the import report of a transcript
(reading the upload and the ELMO export are in ``web.files``; the grade conversions side by
side are ``workflow.case_side_by_side``, for the CLI too).

Routes live in ``web.api`` and ``web.pages``; this module holds no route and touches the
database only through ``workflow``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from workflow import ImportReport


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
