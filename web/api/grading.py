"""Grading tables (with their import) and the two grade conversions of a case:
``/grading-tables``, ``/cases/{id}/conversions``.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response

from web.api.common import call, idempotent
from web.api.schemas import ConversionsOut, GradingTableImportOut, GradingTableOut
from web.files import as_file, import_upload, safe_filename, upload
from web.params import Id
from web.uploads import GuardedRoute
from workflow import Action, NotFound

router = APIRouter(route_class=GuardedRoute)


@router.get("/grading-tables", response_model=list[GradingTableOut], tags=["reference"])
def grading_tables_list(
    request: Request,
    kind: Annotated[Literal["partner", "home"] | None, Query()] = None,
    institution: Annotated[str | None, Query(max_length=120)] = None,
) -> Any:
    """Stored grading tables: partners' tables and your institution's own distributions."""
    from workflow import list_tables

    with call(request) as (s, p, _rt):
        return list_tables(s, kind=kind, institution=institution, actor=p.actor)


@router.post("/grading-tables/import", response_model=GradingTableImportOut, tags=["reference"])
@upload("imports", action=Action.IMPORT_GRADING_TABLES)
def grading_tables_import(
    request: Request,
    file: Annotated[
        UploadFile,
        File(
            description="CSV or JSON, one row per grade: kind, institution, scheme, "
            "reference_year, grade, percentage or count, and optionally isced, "
            "course+term, programme or module"
        ),
    ],
) -> Response:
    """Import partner grading tables and your grade distribution (all rows checked first;
    any problem and nothing is imported, 422 naming line and field)."""
    from workflow import import_file

    with call(request, action=Action.IMPORT_GRADING_TABLES, write=True) as (s, p, rt):
        content, name, suffix = import_upload(
            file, "grading table", "grading-tables.csv", rt.settings.max_import_bytes
        )

        def run() -> tuple[int, Any]:
            with as_file(content, "grading-tables", suffix) as path:
                summary = import_file(
                    s,
                    path,
                    now=rt.now(),
                    home_institution_id=p.actor.institution_id,
                    filename=safe_filename(name),
                    actor=p.actor,
                )
            return 200, {
                "created": summary.created,
                "updated": summary.updated,
                "unchanged": summary.unchanged,
            }

        body = {"sha256": hashlib.sha256(content).hexdigest(), "suffix": suffix}
        return idempotent(request, s, p, body, run)


@router.get("/cases/{case_id}/conversions", response_model=ConversionsOut, tags=["cases"])
def case_conversions(request: Request, case_id: Id) -> Any:
    """The case's partner grade converted by both methods, with the grading tables used and
    the flag when they differ by `threshold` or more: what the examiner sees before choosing
    (404 without a partner grade)."""
    from workflow import case_side_by_side

    with call(request) as (s, p, rt):
        view = case_side_by_side(s, case_id, actor=p.actor, rounding=rt.settings.grade_rounding)
        if view is None:
            raise NotFound(f"case {case_id} has no partner grade to convert yet")
        return view
