"""Transcript imports and matching their results by hand: ``/transcripts``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from config.errors import RecogError
from web import files, i18n, recognition
from web.files import safe_filename, upload
from web.pages.common import page, page_language, render
from web.params import Id
from web.problems import Problem, SignIn, status_of
from web.runtime import runtime
from web.security import Principal
from web.uploads import GuardedRoute
from workflow import Action, ValidationFailed, import_transcript, match_by_hand, queries

router = APIRouter(include_in_schema=False, route_class=GuardedRoute)


def _transcripts_page(
    request: Request, s: Session, p: Principal, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    q = request.query_params
    sha = q.get("file", "")
    report = (
        queries.imported_file(s, sha, actor=p.actor)
        if len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)
        else []
    )
    waiting = queries.pending_results(s, actor=p.actor)
    for row in waiting:
        row["cases"] = queries.cases_waiting_for(
            s, actor=p.actor, partner=row["partner"], course=row["course"]
        )
    counts = {
        k: sum(1 for r in report if r["status"] == k)
        for k in ("matched", "unmatched", "ambiguous", "resolved")
    }
    _ = i18n.translator(page_language(request, p.language))
    for row in (*report, *waiting):
        row["note"] = i18n.import_note(row.get("note"), _)
    matched = q.get("matched", "")
    return render(
        request,
        "transcripts.html",
        {
            "report": report,
            "report_counts": counts,
            "again": q.get("new") == "0",
            "pending": waiting,
            "error": error,
            "matched": int(matched) if matched.isdigit() and len(matched) < 10 else None,
            "max_mb": runtime(request).settings.max_transcript_bytes // (1024 * 1024),
        },
        principal=p,
        status=status,
    )


@router.get("/transcripts")
def transcripts(request: Request) -> Response:
    with page(request, action=Action.SEE_PENDING_RESULTS) as (s, p, _rt):
        return _transcripts_page(request, s, p)


def _transcripts_refused(request: Request, exc: Exception) -> Response:
    """The transcripts page again, saying why the upload or the match was refused."""
    if isinstance(exc, Problem):
        status, message = exc.status, exc.detail
    else:
        assert isinstance(exc, RecogError)
        status, message = status_of(exc)[0], exc.message
    with page(request, action=Action.SEE_PENDING_RESULTS) as (s, p, _rt):
        return _transcripts_page(request, s, p, error=message, status=status)


@router.post("/transcripts")
@upload("transcripts", action=Action.IMPORT_TRANSCRIPT)
def transcript_upload(
    request: Request,
    file: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        with page(request, form={"csrf": csrf}, action=Action.IMPORT_TRANSCRIPT) as (s, p, rt):
            content = files.read_transcript(file, rt.settings.max_transcript_bytes)
            report = import_transcript(
                s,
                content,
                filename=safe_filename(file.filename),
                store=rt.store,
                now=rt.now(),
                home_institution_id=p.actor.institution_id,
                channel="web",
            )
    except SignIn:
        raise
    except Problem as exc:
        if exc.code not in ("media_type", "too_large"):
            raise
        return _transcripts_refused(request, exc)
    except RecogError as exc:
        return _transcripts_refused(request, exc)
    sha = recognition.report_json(report, content)["sha256"]
    new = len(report.results) - report.count("skipped")
    return RedirectResponse(f"/transcripts?file={sha}&new={new}#report", status_code=303)


@router.post("/transcripts/pending/{result_id}/match")
def transcript_match(
    request: Request,
    result_id: Id,
    csrf: Annotated[str, Form(max_length=200)] = "",
    case_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    try:
        with page(request, form={"csrf": csrf}) as (s, p, rt):
            target = case_id.strip().lstrip("#")
            if not target.isdigit() or not 1 <= int(target) < 2**31:
                raise ValidationFailed("give the number of the case the result belongs to")
            match_by_hand(
                s,
                result_id,
                int(target),
                store=rt.store,
                actor=p.actor,
                now=rt.now(),
                channel="web",
            )
    except (SignIn, Problem):
        raise
    except RecogError as exc:
        return _transcripts_refused(request, exc)
    return RedirectResponse(f"/transcripts?matched={int(target)}", status_code=303)
