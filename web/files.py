"""Uploads and downloads, for the API and the pages alike: reading an uploaded document,
transcript or import file within its size limit and accepted types, a safe filename, and the
download responses (a stored document, the ELMO export).

This module holds no route and imports no other module of ``web`` that holds one.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from fastapi import UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from web.problems import Problem
from web.runtime import Runtime
from workflow import (
    DOCUMENT_TYPES,
    Action,
    Actor,
    check_document,
    export_decision_document,
)

TRANSCRIPT_TYPES = ("application/xml", "text/xml")
# Accepted uploads, each with the first bytes its content must start with (the workflow's
# one list, which the CLI's ``case attach`` checks too).
MEDIA_TYPES = DOCUMENT_TYPES
# What a multipart form may carry beside its file: the boundaries, the part headers and the
# small fields (csrf, kind).
FORM_OVERHEAD = 64 * 1024

__all__ = [
    "FORM_OVERHEAD",
    "MEDIA_TYPES",
    "TRANSCRIPT_TYPES",
    "UPLOADS",
    "Upload",
    "as_file",
    "download_response",
    "elmo_export",
    "import_upload",
    "read_transcript",
    "read_upload",
    "safe_filename",
    "upload",
]


# --- which routes take uploads -----------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """What an upload route takes, checked before its body is read (``web.uploads``):
    ``limit`` names the setting of its file's size (``documents``, ``transcripts`` or
    ``imports``), ``action`` the permission the actor needs, ``case_param`` the path
    parameter of a case the actor must see and may attach documents to."""

    limit: Literal["documents", "transcripts", "imports"]
    action: Action | None = None
    case_param: str | None = None

    def file_bytes(self, settings: Any) -> int:
        return int(getattr(settings, f"max_{self.limit[:-1]}_bytes"))


UPLOADS: dict[Callable[..., Any], Upload] = {}

F = TypeVar("F", bound=Callable[..., Any])


def upload(
    limit: Literal["documents", "transcripts", "imports"],
    *,
    action: Action | None = None,
    case_param: str | None = None,
) -> Callable[[F], F]:
    """Declare an endpoint an upload route (put it under the route's decorator): the app
    refuses to start with an upload route that has no declaration."""

    def mark(fn: F) -> F:
        UPLOADS[fn] = Upload(limit, action, case_param)
        return fn

    return mark


# --- uploads -----------------------------------------------------------------------------------


def _too_large(what: str, limit: int) -> Problem:
    return Problem(
        413, "Content Too Large", f"{what} may have at most {limit} bytes", code="too_large"
    )


def read_upload(file: UploadFile, max_bytes: int) -> tuple[bytes, str]:
    """The upload's bytes and media type, refused unless its type is accepted and its
    content starts the way that type must (``workflow.check_document``, as for the CLI)."""
    media_type = (file.content_type or "").split(";")[0].strip().lower()
    if media_type not in DOCUMENT_TYPES:
        raise Problem(
            415,
            "Unsupported Media Type",
            f"{media_type or 'no type'} is not accepted; upload one of {', '.join(MEDIA_TYPES)}",
            code="media_type",
        )
    content = file.file.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise _too_large("a document", max_bytes)
    name = safe_filename(file.filename)
    return content, check_document(content, media_type, filename=name, max_bytes=max_bytes)


def safe_filename(name: str | None) -> str:
    base = (name or "document").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable() and c not in '"<>|:*?')[-200:]
    return cleaned.strip(". ") or "document"


def read_transcript(file: UploadFile, max_bytes: int) -> bytes:
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
    content = file.file.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise _too_large("a transcript", max_bytes)
    return content


def import_upload(
    file: UploadFile, what: str, default: str, max_bytes: int
) -> tuple[bytes, str, str]:
    """An uploaded CSV or JSON import: its bytes (413 past the limit), its name and suffix."""
    content = file.file.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise _too_large(f"a {what} file", max_bytes)
    name = file.filename or default
    return content, name, ".json" if name.lower().endswith(".json") else ".csv"


@contextmanager
def as_file(content: bytes, stem: str, suffix: str) -> Iterator[Path]:
    """The importers read files: the upload as one, in a private temporary directory."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{stem}{suffix}"
        path.write_bytes(content)
        yield path


# --- downloads ---------------------------------------------------------------------------------


def download_response(rt: Runtime, doc: Any) -> Response:
    content = rt.store.get(doc.sha256)
    name = quote(doc.filename, safe="")
    return Response(
        content,
        media_type=doc.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="document-{doc.id}"; '
            f"filename*=UTF-8''{name}",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "no-store",
        },
    )


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
