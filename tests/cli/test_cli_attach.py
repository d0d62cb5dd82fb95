"""``recog case attach`` refuses what the API refuses: one document check for every
interface (``workflow.check_document``), and the kinds the permission table allows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from models import Document
from tests.factories import MINIMAL_PDF, CaseFactory, OfferingFactory, musterstadt


def _documents(cli_db: Any) -> int:
    with cli_db() as s:
        return int(s.scalar(select(func.count()).select_from(Document)) or 0)


def test_case_attach_refuses_what_the_api_refuses(
    cli: Callable[..., Any], cli_db: Any, tmp_path: Path
) -> None:
    with cli_db() as s:
        office = musterstadt()
        case_id = CaseFactory(state="course_passed", offering=OfferingFactory(past=True)).id
        s.flush()
        clerk = office.clerk.label
    exe = tmp_path / "tor.exe"
    exe.write_bytes(b"MZ\x90\x00\x03\x00")  # six bytes of a Windows program
    disguised = tmp_path / "tor.pdf"
    disguised.write_bytes(b"MZ\x90\x00\x03\x00")
    refusals = [
        (exe, "is not accepted"),
        (disguised, "is not application/pdf"),
    ]
    for path, words in refusals:
        r = cli("case", "attach", str(case_id), str(path), "--actor", clerk, check=False)
        assert r.code == 1, r.err
        assert words in r.err, r.err
        assert path.name in r.err, r.err
    assert _documents(cli_db) == 0
    documents_dir = Path(cli.env["RECOG_DATA_DIR"]) / "documents"  # type: ignore[attr-defined]
    assert not documents_dir.exists() or not any(documents_dir.rglob("*"))

    big = tmp_path / "big.pdf"
    big.write_bytes(MINIMAL_PDF + b"0" * 4096)
    r = cli(
        "case",
        "attach",
        str(case_id),
        str(big),
        "--actor",
        clerk,
        check=False,
        RECOG_MAX_DOCUMENT_BYTES="2048",
    )
    assert r.code == 1
    assert "larger than 2048 bytes" in r.err, r.err

    # The case's student may add evidence, not the transcript that lets the office go on.
    pdf = tmp_path / "tor-ok.pdf"
    pdf.write_bytes(MINIMAL_PDF)
    r = cli("case", "attach", str(case_id), str(pdf), "--actor", "student", check=False)
    assert r.code == 3, r.err
    assert "may not attach transcripts of records" in r.err
    assert _documents(cli_db) == 0

    cli("case", "attach", str(case_id), str(pdf), "--actor", "student", "--kind", "evidence")
    cli("case", "attach", str(case_id), str(pdf), "--actor", clerk)
    assert _documents(cli_db) == 2
