"""A case's documents: the list, upload and download: ``/cases/{id}/documents``."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from web.api.common import call, idempotent
from web.api.schemas import DocumentOut
from web.files import MEDIA_TYPES, download_response, read_upload, safe_filename, upload
from web.params import Id
from web.uploads import GuardedRoute
from workflow import DOCUMENT_KINDS, ValidationFailed, attach_document, queries

router = APIRouter(route_class=GuardedRoute)


@router.get("/cases/{case_id}/documents", response_model=list[DocumentOut], tags=["documents"])
def documents(request: Request, case_id: Id) -> Any:
    with call(request) as (s, p, _rt):
        return queries.documents(s, case_id, actor=p.actor)


@router.post(
    "/cases/{case_id}/documents", response_model=DocumentOut, status_code=201, tags=["documents"]
)
@upload("documents", case_param="case_id")
def upload_document(
    request: Request,
    case_id: Id,
    file: Annotated[UploadFile, File()],
    kind: Annotated[str, Form(max_length=20)] = "evidence",
) -> Response:
    with call(request, write=True) as (s, p, rt):
        queries.case_status(s, case_id, actor=p.actor, now=rt.now())  # 404 before all else
        if kind not in DOCUMENT_KINDS:
            raise ValidationFailed(
                f"unknown document kind {kind!r}; use one of {', '.join(DOCUMENT_KINDS)}"
            )
        content, media_type = read_upload(file, rt.settings.max_document_bytes)
        filename = safe_filename(file.filename)

        def run() -> tuple[int, Any]:
            doc_id, _ = attach_document(
                s,
                case_id,
                content=content,
                filename=filename,
                media_type=media_type,
                kind=kind,
                store=rt.store,
                actor=p.actor,
                now=rt.now(),
                channel="api",
                max_bytes=rt.settings.max_document_bytes,
            )
            doc = queries.document(s, case_id, doc_id, actor=p.actor)
            return 201, DocumentOut.model_validate(doc, from_attributes=True).model_dump(
                mode="json"
            )

        body = {"sha256": hashlib.sha256(content).hexdigest(), "kind": kind, "filename": filename}
        return idempotent(request, s, p, body, run)


@router.get(
    "/cases/{case_id}/documents/{document_id}",
    tags=["documents"],
    response_class=Response,
    responses={
        200: {"content": {t: {} for t in MEDIA_TYPES}, "description": "The document's bytes"}
    },
)
def download_document(request: Request, case_id: Id, document_id: Id) -> Response:
    with call(request) as (s, p, rt):
        doc = queries.document(s, case_id, document_id, actor=p.actor)
        return download_response(rt, doc)
