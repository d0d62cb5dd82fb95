"""Transcript imports and matching their results by hand: ``/transcripts``."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response

from web.api.common import call, idempotent
from web.api.schemas import MatchIn, MatchOut, PendingResultOut, TranscriptReportOut
from web.files import read_transcript, safe_filename, upload
from web.params import Id
from web.recognition import report_json
from web.uploads import GuardedRoute
from workflow import Action, queries

router = APIRouter(route_class=GuardedRoute)


@router.post("/transcripts", response_model=TranscriptReportOut, tags=["transcripts"])
@upload("transcripts", action=Action.IMPORT_TRANSCRIPT)
def upload_transcript(
    request: Request,
    file: Annotated[
        UploadFile,
        File(
            description="ELMO 1.7, ELMO 2.0 or an EWP transcript-of-records response, sent as "
            "application/xml or text/xml"
        ),
    ],
) -> Response:
    """Import a partner's transcript of records: each result lands on its case (firing its
    events as the actor `import`), or waits for a clerk. A bad file is refused as a whole
    (422 naming `file`, `line` and `element`) and nothing from it is imported."""
    from workflow import import_transcript

    with call(request, action=Action.IMPORT_TRANSCRIPT, write=True) as (s, p, rt):
        content = read_transcript(file, rt.settings.max_transcript_bytes)
        name = safe_filename(file.filename or "transcript.xml")

        def run() -> tuple[int, Any]:
            report = import_transcript(
                s,
                content,
                filename=name,
                store=rt.store,
                now=rt.now(),
                home_institution_id=p.actor.institution_id,
                channel="api",
            )
            return 200, report_json(report, content)

        body = {"sha256": hashlib.sha256(content).hexdigest(), "filename": name}
        return idempotent(request, s, p, body, run)


@router.get("/transcripts/pending", response_model=list[PendingResultOut], tags=["transcripts"])
def pending_transcripts(request: Request) -> Any:
    """Imported results of your institution that matched no case, or several."""
    with call(request, action=Action.SEE_PENDING_RESULTS) as (s, p, _rt):
        return jsonable_encoder(queries.pending_results(s, actor=p.actor))


@router.post(
    "/transcripts/pending/{result_id}/match", response_model=MatchOut, tags=["transcripts"]
)
def match_transcript(request: Request, result_id: Id, body: MatchIn) -> Response:
    """Apply a waiting result to a case by hand: the same events as an automatic match."""
    from workflow import match_by_hand

    with call(request, write=True) as (s, p, rt):

        def run() -> tuple[int, Any]:
            events = match_by_hand(
                s,
                result_id,
                body.case_id,
                store=rt.store,
                actor=p.actor,
                now=rt.now(),
                channel="api",
            )
            return 200, {"result_id": result_id, "case_id": body.case_id, "events": events}

        return idempotent(request, s, p, {"result_id": result_id, **body.model_dump()}, run)
