"""Who may attach which kind of document (the permission table, through the use case), the
one document check every interface shares, and the transcript guard that counts only the
transcripts the office or an import attached."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from models import CaseEvent, Document, Role
from tests.factories import MINIMAL_PDF, Office, student_actor
from tests.workflow.refusals import case_in, events
from workflow import (
    DOCUMENT_KINDS,
    Forbidden,
    GuardFailed,
    TooLarge,
    UnsupportedDocument,
    ValidationFailed,
    attach_document,
    check_document,
    document_kinds,
    fire,
)
from workflow.cases.documents import MemoryStore
from workflow.policy.actors import Actor

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)

# Written out here, not read from the table: the table is what is under test.
MAY_ATTACH: dict[str, set[str]] = {
    "clerk": {"transcript", "evidence", "notice", "correspondence"},
    "admin": {"transcript", "evidence", "notice", "correspondence"},
    "student": {"evidence", "correspondence"},
    "import": {"transcript"},
    "timer": {"notice"},
    "examiner": set(),
    "board": set(),
}


def _actor(session: Session, network: Office, role: str, case_id: int) -> Actor:
    if role == "student":
        return student_actor(session, case_id)
    if role in ("import", "timer"):
        return Actor.system(Role(role))
    actor: Actor = getattr(network, role)
    return actor


def _documents(session: Session, case_id: int) -> int:
    return session.scalar(select(func.count()).where(Document.case_id == case_id)) or 0


@pytest.mark.parametrize("role", sorted(MAY_ATTACH))
def test_document_kinds_by_role(session: Session, network: Office, role: str) -> None:
    case_id = case_in(session, network, "course_passed")
    who = _actor(session, network, role, case_id)
    assert set(document_kinds(who)) == MAY_ATTACH[role]
    for kind in DOCUMENT_KINDS:
        before = (events(session, case_id), _documents(session, case_id))
        if kind in MAY_ATTACH[role]:
            doc_id, _ = attach_document(
                session,
                case_id,
                content=MINIMAL_PDF,
                filename=f"{kind}.pdf",
                media_type="application/pdf",
                kind=kind,
                store=MemoryStore(),
                actor=who,
                now=NOW,
            )
            row = session.get(Document, doc_id)
            assert row is not None
            assert (row.kind, row.uploaded_by_role) == (kind, role)
        else:
            with pytest.raises(Forbidden) as refused:
                attach_document(
                    session,
                    case_id,
                    content=MINIMAL_PDF,
                    filename=f"{kind}.pdf",
                    media_type="application/pdf",
                    kind=kind,
                    store=MemoryStore(),
                    actor=who,
                    now=NOW,
                )
            assert f"a {role}" in refused.value.message or f"an {role}" in refused.value.message
            assert (events(session, case_id), _documents(session, case_id)) == before


def test_a_student_transcript_does_not_satisfy_the_transcript_guard(
    session: Session, network: Office
) -> None:
    case_id = case_in(session, network, "course_passed")
    student = student_actor(session, case_id)
    with pytest.raises(Forbidden, match="may not attach transcripts of records"):
        attach_document(
            session,
            case_id,
            content=MINIMAL_PDF,
            filename="tor.pdf",
            media_type="application/pdf",
            kind="transcript",
            store=MemoryStore(),
            actor=student,
            now=NOW,
        )
    # A transcript a student attached before the permission table said otherwise (a row
    # of an older installation) does not count either.
    session.execute(
        insert(Document).values(
            case_id=case_id,
            kind="transcript",
            filename="mine.pdf",
            media_type="application/pdf",
            size=len(MINIMAL_PDF),
            sha256="0" * 64,
            uploaded_at=NOW,
            uploaded_by_role="student",
            uploaded_by_id=student.id,
        )
    )
    before = events(session, case_id)
    with pytest.raises(GuardFailed, match="no transcript of records is attached"):
        fire(session, case_id, "receive_transcript", actor=network.clerk, now=NOW)
    assert events(session, case_id) == before
    for who in (network.clerk, Actor.system(Role.IMPORT)):
        other = case_in(session, network, "course_passed", n=1 if who is network.clerk else 2)
        attach_document(
            session,
            other,
            content=MINIMAL_PDF,
            filename="tor.pdf",
            media_type="application/pdf",
            kind="transcript",
            store=MemoryStore(),
            actor=who,
            now=NOW,
        )
        fired = fire(session, other, "receive_transcript", actor=network.clerk, now=NOW)
        assert fired.to_state == "transcript_received"
    assert session.scalar(select(func.count()).select_from(CaseEvent)) > before


@pytest.mark.parametrize(
    ("content", "media_type", "error", "words"),
    [
        (b"MZ\x90\x00\x03\x00", "application/octet-stream", UnsupportedDocument, "not accepted"),
        (b"MZ\x90\x00\x03\x00", "application/pdf", UnsupportedDocument, "is not application/pdf"),
        (b"", "application/pdf", ValidationFailed, "empty"),
        (MINIMAL_PDF + b"0" * 2000, "application/pdf", TooLarge, "larger than 1000 bytes"),
    ],
)
def test_check_document_refuses(
    content: bytes, media_type: str, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        check_document(content, media_type, filename="tor.exe", max_bytes=1000)
    assert check_document(MINIMAL_PDF, "Application/PDF; x=y", filename="a.pdf") == (
        "application/pdf"
    )


def test_a_person_attaching_a_program_changes_nothing(session: Session, network: Office) -> None:
    case_id = case_in(session, network, "course_passed")
    before = (events(session, case_id), _documents(session, case_id))
    with pytest.raises(UnsupportedDocument):
        attach_document(
            session,
            case_id,
            content=b"MZ\x90\x00\x03\x00",
            filename="tor.exe",
            media_type="application/octet-stream",
            kind="transcript",
            store=MemoryStore(),
            actor=network.clerk,
            now=NOW,
        )
    assert (events(session, case_id), _documents(session, case_id)) == before
