"""Batches (``engine.fire_many``, ``writes.write_many``, ``writes.insert_rows``) write
set-based on sqlite3 and psycopg. These tests pin them to what SQLAlchemy Core stores for
the same batch (the same bytes in every row, on SQLite and PostgreSQL), and check that a
batch that loses a compare-and-swap leaves nothing behind, even for a caller that does not
roll back."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import Case, CaseEvent
from tests.workflow.rows import case_rows
from workflow.cases import engine
from workflow.cases import storage as writes
from workflow.decisions import cohort
from workflow.demo import Network, create_case
from workflow.errors import Conflict

LATER = dt.datetime(2027, 1, 10, 12, 0, 0, 654321, tzinfo=dt.UTC)
TABLES = {
    "cases": "id",
    "case_events": "seq",
    "outbox": "dedup_key",
    "reminders": "kind, due_at",
    "precedents": "module_id, event_seq",
}
FAST = {("sqlite", "pysqlite"): "sqlite", ("postgresql", "psycopg"): "postgresql"}


def _snapshot(session: Session, cases: list[int]) -> dict[int, dict[str, list[Any]]]:
    """Every row of the cases in the tables a batch writes, as the database holds it."""
    return {case_id: case_rows(session, case_id, TABLES) for case_id in cases}


def _in_review(session: Session, network: Network, n: int) -> int:
    case_id = create_case(
        session,
        network,
        target="in_review",
        term="recent",
        matriculation=f"BW{n:03d}",
        name=f"Batch {n}",
        email=f"bw{n}@example.org",
    )
    # Different partner grades, one that cannot be converted (stored with its error).
    result = dict(session.scalar(select(Case.result).where(Case.id == case_id)) or {})
    result["grade"] = ("30", "27", "27", "nonsense")[n % 4]
    session.execute(update(Case).where(Case.id == case_id).values(result=result))
    return case_id


def _decide(session: Session, network: Network, cases: list[int], event: str) -> None:
    offering = session.scalar(select(Case.offering_id).where(Case.id == cases[0]))
    assert offering is not None
    data: dict[str, Any] = {"modules": "INF-ML", "grade": "2.0"}
    if event == "reject":
        data = {
            "reasons": {"level": "EQF 5, not 6", "workload": "3 ECTS, not 5"},
            "advice": "Take the home exam",
        }
    fired = cohort.decide(
        session,
        offering_id=offering,
        module_code="INF-ML",
        event=event,
        data=data,
        actor=network.examiner,
        now=LATER,
    )
    assert sorted(f.case_id for f in fired) == sorted(cases)


@pytest.mark.parametrize("event", ["recognize", "reject"])
def test_batches_write_the_same_bytes_as_core(
    session: Session,
    network: Network,
    monkeypatch: pytest.MonkeyPatch,
    event: str,
) -> None:
    cases = [_in_review(session, network, n) for n in range(5)]
    assert writes.fast_kind(session.connection()) == session.get_bind().dialect.name

    nested = session.begin_nested()
    _decide(session, network, cases, event)
    fast = _snapshot(session, cases)
    nested.rollback()

    monkeypatch.setattr(writes, "FAST", {})  # load, write and insert through SQLAlchemy Core
    nested = session.begin_nested()
    _decide(session, network, cases, event)
    core = _snapshot(session, cases)
    nested.rollback()

    for table in TABLES:
        assert all(seen[table] for seen in fast.values()), table
    assert fast == core


def test_load_many_gives_the_rows_core_gives(
    session: Session,
    network: Network,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cases = [_in_review(session, network, n) for n in range(3)]
    fast = engine._load_many(session, [*reversed(cases), 999_999])
    monkeypatch.setattr(writes, "FAST", {})
    core = engine._load_many(session, [*reversed(cases), 999_999])
    assert [r.id for r in fast] == sorted(cases)
    assert all(isinstance(r, engine.CaseRow) for r in fast)
    assert [tuple(r) for r in fast] == [tuple(r) for r in core]


@pytest.mark.parametrize("fast", [True, False])
def test_a_batch_that_loses_a_compare_and_swap_leaves_nothing_behind(
    session: Session,
    network: Network,
    monkeypatch: pytest.MonkeyPatch,
    fast: bool,
) -> None:
    if not fast:
        monkeypatch.setattr(writes, "FAST", {})
    cases = [_in_review(session, network, n) for n in range(4)]
    before = _snapshot(session, cases)
    events = session.scalar(select(func.count()).select_from(CaseEvent))
    write_many = writes.write_many

    def meanwhile(conn: Any, batch: list[writes.Write]) -> list[int]:
        # The third case changes after it was read and checked (here inside the batch's
        # savepoint, so its rollback takes this change too).
        conn.execute(update(Case).where(Case.id == cases[2]).values(version=Case.version + 1))
        return write_many(conn, batch)

    monkeypatch.setattr(writes, "write_many", meanwhile)
    with pytest.raises(Conflict, match=f"case {cases[2]}"):
        _decide(session, network, cases, "recognize")
    # The caller has not rolled back, and the batch left nothing behind.
    assert _snapshot(session, cases) == before
    assert session.scalar(select(func.count()).select_from(CaseEvent)) == events


def test_insert_rows_goes_through_core_for_types_it_does_not_convert(
    session: Session,
    network: Network,
) -> None:
    from models import Offering

    kinds = writes._column_kinds(Offering.__table__, ("start_date", "code"))
    assert kinds is None  # a date column: Core binds it
    assert writes._column_kinds(CaseEvent.__table__, ("case_id", "at", "data", "event")) == (
        "plain",
        "instant",
        "json",
        "plain",
    )


def _imported(session: Session) -> list[Any]:
    raw = session.connection().connection.driver_connection
    if session.get_bind().dialect.name == "sqlite":
        cur = raw.execute("SELECT * FROM imported_results ORDER BY line")
        names = [d[0] for d in cur.description]
        return [
            {n: v for n, v in zip(names, row, strict=True) if n != "id"} for row in cur.fetchall()
        ]
    cur = raw.execute("SELECT (to_jsonb(t) - 'id')::text FROM imported_results t ORDER BY line")
    return [row[0] for row in cur.fetchall()]


def test_imported_results_are_stored_as_core_stores_them(
    session: Session,
    network: Network,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pathlib import Path

    from workflow.cases.documents import MemoryStore
    from workflow.transcripts.importing import import_transcript

    example = (
        Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "elmo" / "example.xml"
    )
    now = dt.datetime(2026, 11, 2, 9, 0, 0, 123456, tzinfo=dt.UTC)
    nested = session.begin_nested()
    fast_report = import_transcript(session, example, store=MemoryStore(), now=now)
    fast = _imported(session)
    nested.rollback()
    monkeypatch.setattr(writes, "FAST", {})
    nested = session.begin_nested()
    core_report = import_transcript(session, example, store=MemoryStore(), now=now)
    core = _imported(session)
    nested.rollback()
    assert len(fast) == len(fast_report.results) >= 3
    assert fast == core
    assert fast_report.results == core_report.results


@pytest.mark.parametrize(
    "values",
    [
        (
            "uw.edu.pl",
            "1000-217bMRJ",
            "Budowa kompilatorów",
            "passed",
            "45.1",
            "6",
            6,
            "2015-03-17",
            "pl",
        ),
        (None, None, None, "failed", None, None, None, None, None),
        (
            "x",
            'quote " back \\ slash',
            "tab\tnew\nline \u2028 \U0001f600 \x00",
            "passed",
            "1,5",
            "7.5",
            0,
            "2024-01-01",
            "en",
        ),
    ],
)
def test_result_json_text_is_json_dumps(values: tuple[Any, ...]) -> None:
    import json

    from workflow.transcripts.importing import _RESULT_KEYS, _json_text

    encoded: dict[Any, str] = {}
    expected = json.dumps(dict(zip(_RESULT_KEYS, values, strict=True)))
    assert _json_text(values, encoded) == expected
    assert _json_text(values, encoded) == expected  # from the memo too
    assert isinstance(_json_text(values, encoded), writes.JSONText)
