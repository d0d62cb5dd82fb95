"""Students and their status links: ``/students``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from web.api.common import call, idempotent
from web.api.schemas import Page, Queued, Revoked, StudentIn, StudentOut
from web.params import Id, Limit, Offset
from web.uploads import GuardedRoute
from workflow import Action, ValidationFailed, auth, catalog, queries

router = APIRouter(route_class=GuardedRoute)


@router.get("/students", response_model=Page, tags=["students"])
def students(request: Request, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    with call(request) as (s, p, _rt):
        found, total = queries.office_students(s, actor=p.actor, limit=limit, offset=offset)
        items = [StudentOut.model_validate(st, from_attributes=True).model_dump() for st in found]
        return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post("/students", response_model=StudentOut, status_code=201, tags=["students"])
def create_student(request: Request, body: StudentIn) -> Response:
    """Register a student (or return the one with this matriculation number)."""
    with call(request, action=Action.REGISTER_STUDENT, write=True) as (s, p, _rt):
        assert p.actor.institution_id is not None

        def run() -> tuple[int, Any]:
            st = catalog.find_or_create_student(s, p.actor.institution_id or 0, **body.model_dump())
            return 201, StudentOut.model_validate(st, from_attributes=True).model_dump()

        return idempotent(request, s, p, body.model_dump(), run)


@router.get("/students/{student_id}", response_model=StudentOut, tags=["students"])
def student(request: Request, student_id: Id) -> Any:
    with call(request) as (s, p, _rt):
        return StudentOut.model_validate(
            queries.student(s, student_id, actor=p.actor), from_attributes=True
        )


@router.post(
    "/students/{student_id}/status-link", response_model=Queued, status_code=202, tags=["students"]
)
def send_status_link(request: Request, student_id: Id) -> Any:
    """E-mail the student a fresh secret link to their status page (at most once per few
    minutes). The link is minted when the e-mail is composed; it is never returned here."""
    with call(request, action=Action.SEND_STATUS_LINK, write=True) as (s, p, rt):
        queries.student(s, student_id, actor=p.actor)
        case_ids = queries.case_ids_of_student(s, student_id)
        if not case_ids:
            raise ValidationFailed("the student has no case yet; a status link shows cases")
        queued = auth.queue_status_link(
            s, case_ids[0], link_base=rt.settings.link_base, now=rt.now()
        )
        detail = (
            "the e-mail is queued"
            if queued
            else "a link was sent a few minutes ago; nothing new was queued"
        )
        return JSONResponse({"queued": queued, "detail": detail}, status_code=202)


@router.delete("/students/{student_id}/status-links", response_model=Revoked, tags=["students"])
def revoke_status_links(request: Request, student_id: Id) -> Any:
    """Revoke every status link of the student (and end the sessions opened by them)."""
    with call(request, action=Action.REVOKE_STATUS_LINKS, write=True) as (s, p, rt):
        queries.student(s, student_id, actor=p.actor)
        return {"revoked": auth.revoke_status_links(s, student_id, now=rt.now())}
