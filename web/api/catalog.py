"""Reference data: institutions, programmes, modules and the partner catalogue (with its import)."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response

from web.api.common import call, idempotent
from web.api.schemas import ImportOut, InstitutionOut, ModuleOut, OfferingOut, Page, ProgrammeOut
from web.files import as_file, import_upload, safe_filename, upload
from web.params import Limit, Offset
from web.uploads import GuardedRoute
from workflow import Action, catalog, queries

router = APIRouter(route_class=GuardedRoute)


@router.get("/institutions", response_model=list[InstitutionOut], tags=["reference"])
def institutions(request: Request) -> list[Any]:
    """The partner institutions and your own."""
    with call(request) as (s, p, _rt):
        return [
            InstitutionOut.model_validate(i, from_attributes=True)
            for i in queries.institutions(s, actor=p.actor)
        ]


@router.get("/programmes", response_model=list[ProgrammeOut], tags=["reference"])
def programmes(request: Request) -> list[Any]:
    """The programmes and modules of your own institution."""
    with call(request) as (s, p, _rt):
        progs = queries.office_programmes(s, actor=p.actor)
        return [
            ProgrammeOut(
                id=g.id,
                code=g.code,
                title=g.title,
                degree=g.degree,
                modules=[
                    ModuleOut.model_validate(m, from_attributes=True)
                    for m in sorted(g.modules, key=lambda m: m.code)
                ],
            )
            for g in progs
        ]


@router.get("/catalogue", response_model=Page, tags=["reference"])
def catalogue(
    request: Request,
    limit: Limit = 50,
    offset: Offset = 0,
    partner: Annotated[str | None, Query(max_length=120)] = None,
    term: Annotated[str | None, Query(max_length=20)] = None,
) -> dict[str, Any]:
    """The partner course catalogue (offerings), paginated."""
    with call(request) as (s, p, _rt):
        rows, total = queries.catalogue(
            s, actor=p.actor, partner=partner, term=term, limit=limit, offset=offset
        )
        items = [
            OfferingOut.model_validate(
                {
                    **{k: getattr(o, k) for k in OfferingOut.model_fields if k != "partner"},
                    "partner": code,
                }
            ).model_dump(mode="json")
            for o, code in rows
        ]
        return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post("/catalogue/import", response_model=ImportOut, tags=["reference"])
@upload("imports", action=Action.IMPORT_CATALOGUE)
def catalogue_import(request: Request, file: Annotated[UploadFile, File()]) -> Response:
    """Import partner course offerings (CSV or JSON, all rows checked first)."""
    with call(request, action=Action.IMPORT_CATALOGUE, write=True) as (s, p, rt):
        content, name, suffix = import_upload(
            file, "catalogue", "catalogue.csv", rt.settings.max_import_bytes
        )

        def run() -> tuple[int, Any]:
            with as_file(content, "catalogue", suffix) as path:
                summary = catalog.import_catalogue(
                    s, path, filename=safe_filename(name), actor=p.actor
                )
            return 200, {"created": summary.created, "updated": summary.updated}

        body = {"sha256": hashlib.sha256(content).hexdigest(), "suffix": suffix}
        return idempotent(request, s, p, body, run)


@router.get("/modules", response_model=list[ModuleOut], tags=["reference"])
def modules(request: Request) -> Any:
    """All home modules of your institution."""
    with call(request) as (s, p, _rt):
        return queries.office_modules(s, actor=p.actor)
