"""Uploads and downloads, for the API and the pages alike: reading an uploaded document,
transcript or import file within its size limit and accepted types, a safe filename, and the
download responses (a stored document, the ELMO export).

This module holds no route and imports no other module of ``web`` that holds one.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from web.problems import Problem
from web.runtime import Runtime
from workflow import MAX_DOCUMENT_BYTES, Actor, ValidationFailed, export_decision_document

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_TRANSCRIPT_BYTES = 20 * 1024 * 1024
TRANSCRIPT_TYPES = ("application/xml", "text/xml")
# Accepted uploads, each with the first bytes its content must start with.
MEDIA_TYPES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "application/xml": (b"<?xml", b"<"),
    "text/xml": (b"<?xml", b"<"),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_IMPORT_BYTES",
    "MAX_TRANSCRIPT_BYTES",
    "MEDIA_TYPES",
    "TRANSCRIPT_TYPES",
    "as_file",
    "download_response",
    "elmo_export",
    "import_upload",
    "read_transcript",
    "read_upload",
    "safe_filename",
]


# --- uploads -----------------------------------------------------------------------------------


def read_upload(file: UploadFile) -> tuple[bytes, str]:
    """The upload's bytes and media type, refused unless its type is accepted and its
    content starts the way that type must."""
    media_type = (file.content_type or "").split(";")[0].strip().lower()
    signatures = MEDIA_TYPES.get(media_type)
    if signatures is None:
        raise Problem(
            415,
            "Unsupported Media Type",
            f"{media_type or 'no type'} is not accepted; upload one of {', '.join(MEDIA_TYPES)}",
            code="media_type",
        )
    content = file.file.read(MAX_DOCUMENT_BYTES + 1)
    if len(content) > MAX_DOCUMENT_BYTES:
        raise Problem(
            413,
            "Content Too Large",
            f"a document may have at most {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB",
            code="too_large",
        )
    if not content:
        raise ValidationFailed("the file is empty")
    if not content.lstrip().startswith(signatures):
        raise Problem(
            415,
            "Unsupported Media Type",
            f"the file's content is not {media_type}",
            code="media_type",
        )
    return content, media_type


def safe_filename(name: str | None) -> str:
    base = (name or "document").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable() and c not in '"<>|:*?')[-200:]
    return cleaned.strip(". ") or "document"


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


def import_upload(file: UploadFile, what: str, default: str) -> tuple[bytes, str, str]:
    """An uploaded CSV or JSON import: its bytes (413 past the limit), its name and suffix."""
    content = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(content) > MAX_IMPORT_BYTES:
        raise Problem(
            413,
            "Content Too Large",
            f"a {what} file may have at most {MAX_IMPORT_BYTES} bytes",
            code="too_large",
        )
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
