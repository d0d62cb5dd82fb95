"""The writes of an event (``writes.write``, ``writes.write_many``, ``writes.insert_rows``) and
the engine's load, which run compiled Core statements on the session's own DB-API cursor: what
they store reads back through the ORM as written, a lost compare-and-swap writes nothing (one
event or a batch), driver errors are SQLAlchemy's exceptions, and PostgreSQL prepares them."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, Table, exc, func, select, update
from sqlalchemy.orm import Session

from models import Case, CaseEvent, ImportedResult, Offering, Outbox, Reminder
from models.db import make_engine, session_factory
from tests.factories import (
    CaseFactory,
    OfferingFactory,
    Office,
    bound,
    student_actor,
)
from workflow.cases import audit, engine
from workflow.cases import storage as writes
from workflow.cases.engine import fire
from workflow.decisions import cohort
from workflow.errors import Conflict

BERLIN = ZoneInfo("Europe/Berlin")
# Not UTC, with microseconds: both must survive the trip.
START = dt.datetime(2026, 11, 2, 10, 15, 30, 123456, tzinfo=BERLIN)
LATER = dt.datetime(2027, 1, 10, 12, 0, 0, 654321, tzinfo=dt.UTC)
TABLES: tuple[Any, ...] = (CaseEvent, Outbox, Reminder)


def _case(
    session: Session,
    network: Office,
    n: int,
    target: str = "submitted",
    offering: Offering | None = None,
) -> int:
    return CaseFactory(
        state=target,
        offering=offering or OfferingFactory(past=target != "in_review"),
        student__matriculation_number=f"WR{n:03d}",
        student__name=f"Write {n}",
        student__email=f"write{n}@student.example",
    ).id


def snapshot(session: Session, case_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the case in the tables an event writes, as the ORM reads it."""
    seen = {
        "cases": [
            tuple(
                session.connection().execute(select(Case.__table__).where(Case.id == case_id)).one()
            )
        ]
    }
    for model in TABLES:
        table: Table = model.__table__
        rows = session.connection().execute(
            select(table).where(table.c.case_id == case_id).order_by(*table.primary_key)
        )
        seen[table.name] = [tuple(r) for r in rows]
    return seen


def test_load_gives_the_row_core_gives(session: Session, network: Office) -> None:
    case_id = _case(session, network, 1)
    case = session.get(Case, case_id)
    assert case is not None
    case.due_at = START
    case.due_kind = "decision"
    case.decision_due_at = START + dt.timedelta(days=3, microseconds=7)
    case.appeal_ends_at = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    case.decision_paused_seconds = 12
    case.result = {"passed": True, "grade": "27 e lode", "note": "ßäö € \u2028", "n": [1, 2.5]}
    session.flush()

    loaded = engine._load(session, case_id)
    core = session.connection().execute(engine._LOAD, {"case_id": case_id}).one()
    assert isinstance(loaded, engine.CaseRow)
    assert tuple(loaded) == tuple(core)
    assert loaded.due_at == START
    assert loaded.due_at.tzinfo is dt.UTC
    assert engine._load(session, 999_999) is None

    many = engine._load_many(session, [case_id, 999_999])
    assert [tuple(r) for r in many] == [tuple(core)]


def test_what_fire_writes_reads_back_through_the_orm(session: Session, network: Office) -> None:
    case_id = _case(session, network, 2)
    data = {"z": 1, "a": "Grüße \u2603", "nested": {"list": [None, True, 1.25]}}
    fired = fire(session, case_id, "withdraw", actor=student_actor(session, case_id), now=START)
    session.expire_all()
    event = session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.seq == fired.seq)
    ).one()
    assert event.at == START
    assert event.at.tzinfo is dt.UTC
    assert event.data == fired.data
    assert event.hash == fired.hash
    outbox = session.scalars(
        select(Outbox).where(Outbox.event_seq == fired.seq, Outbox.case_id == case_id)
    ).all()
    assert [o.dedup_key for o in outbox] == list(fired.outbox)
    assert all(o.created_at == START and o.payload["event"] == "withdraw" for o in outbox)
    assert audit.verify(session, case_id).ok

    # JSON and instants of a batch insert: stored as the column types store them.
    writes.insert_rows(
        session.connection(),
        Reminder.__table__,
        [{"case_id": case_id, "kind": "test", "due_at": START, "action": "notify"}],
    )
    writes.insert_rows(
        session.connection(),
        Outbox.__table__,
        [("test:1", case_id, "email", "student", "t", data, "pending", 0, START, START)],
        columns=(
            "dedup_key",
            "case_id",
            "channel",
            "recipient",
            "template",
            "payload",
            "status",
            "attempts",
            "available_at",
            "created_at",
        ),
    )
    session.expire_all()
    reminder = session.scalars(select(Reminder).where(Reminder.kind == "test")).one()
    assert reminder.due_at == START
    stored = session.scalars(select(Outbox).where(Outbox.dedup_key == "test:1")).one()
    assert stored.payload == data
    assert stored.available_at == START


def test_json_text_is_stored_as_it_is(session: Session, network: Office) -> None:
    """A JSONText value is not encoded a second time (imports share one encoding)."""
    row = {
        "institution_id": None,
        "filename": "f.xml",
        "file_sha256": "0" * 64,
        "line": 1,
        "learner": writes.JSONText('{"name": "A"}'),
        "result": {"grade": "27"},
        "status": "unmatched",
        "imported_at": START,
    }
    writes.insert_rows(session.connection(), ImportedResult.__table__, [row])
    stored = session.scalars(select(ImportedResult).where(ImportedResult.filename == "f.xml"))
    got = stored.one()
    assert got.learner == {"name": "A"}
    assert got.result == {"grade": "27"}


# PostgreSQL only: SQLite stores a string of any length, whatever the column says.
@pytest.mark.parametrize(
    "engine", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_string_too_long_for_its_column_is_refused_not_cut(
    session: Session, network: Office
) -> None:
    """Rows many at once (arrays on PostgreSQL) keep the column's length check."""
    row = {
        "institution_id": None,
        "filename": "f.xml",
        "file_sha256": "0" * 65,
        "line": 1,
        "learner": {"name": "A"},
        "result": {"grade": "27"},
        "status": "unmatched",
        "imported_at": START,
    }
    with pytest.raises(exc.DBAPIError):
        writes.insert_rows(session.connection(), ImportedResult.__table__, [row, row])


def test_naive_instants_are_refused(session: Session, network: Office) -> None:
    case_id = _case(session, network, 3)
    w, _ = _write_for(session, case_id)
    naive = dt.datetime(2026, 1, 1)  # noqa: DTZ001
    bad = writes.Write(
        w.case_id, w.old_version, {**w.case_values, "updated_at": naive}, w.event_row, [], None
    )
    with pytest.raises(ValueError, match="naive datetime"):
        writes.write(session.connection(), bad)


def _write_for(session: Session, case_id: int) -> tuple[writes.Write, Any]:
    row = engine._load(session, case_id)
    actor = student_actor(session, case_id)
    return engine._build(
        row,
        event="note",
        to_state=row.state,
        actor=actor,
        role=actor.role.value,
        channel="test",
        now=START,
        data={"n": 1},
        updates={},
        notify=("student",),
    )


def test_a_lost_compare_and_swap_writes_nothing(session: Session, network: Office) -> None:
    case_id = _case(session, network, 4)
    w, _ = _write_for(session, case_id)
    stale = writes.Write(
        w.case_id, w.old_version - 1, w.case_values, w.event_row, w.outbox_rows, []
    )
    before = snapshot(session, case_id)
    assert writes.write(session.connection(), stale) is False
    assert snapshot(session, case_id) == before
    assert writes.write(session.connection(), w) is True
    after = snapshot(session, case_id)
    assert len(after["case_events"]) == len(before["case_events"]) + 1
    assert len(after["outbox"]) == len(before["outbox"]) + 1


def test_fire_marks_the_session_when_it_wrote_to_the_outbox(
    session: Session,
    network: Office,
) -> None:
    case_id = _case(session, network, 5)
    session.info.pop("recog_outbox_written", None)
    fire(session, case_id, "withdraw", actor=student_actor(session, case_id), now=START)
    assert session.info.get("recog_outbox_written") is True


def test_driver_errors_surface_as_sqlalchemy_errors(session: Session, network: Office) -> None:
    case_id = _case(session, network, 6)
    w, _ = _write_for(session, case_id)
    dup = writes.Write(
        w.case_id, w.old_version - 1, w.case_values, {**w.event_row, "seq": w.old_version}, [], None
    )
    nested = session.begin_nested()
    # The case claims an older version, so the CAS passes; the audit row's seq is taken.
    session.execute(update(Case).where(Case.id == case_id).values(version=w.old_version - 1))
    with pytest.raises(exc.IntegrityError):
        writes.write(session.connection(), dup)
    nested.rollback()
    # The failed statement's cursor was closed; the next transition gets a fresh one.
    fired = fire(session, case_id, "withdraw", actor=student_actor(session, case_id), now=START)
    assert engine._load(session, case_id).version == fired.seq


def test_begin_immediate_errors_are_sqlalchemy_errors(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    url = sqlite_engine.url.database
    assert url is not None
    eng = make_engine(f"sqlite:///{url}")
    try:
        with eng.connect() as conn:  # the pooled connection: do not wait for the lock
            conn.connection.driver_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
            conn.rollback()
        holder = sqlite3.connect(url, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with (
                pytest.raises(exc.OperationalError, match="locked"),
                session_factory(eng)() as s,
                s.begin(),
            ):
                s.connection()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    finally:
        eng.dispose()


def _in_review(session: Session, network: Office, n: int) -> int:
    # One course offering: a cohort.
    cohort_course = OfferingFactory(institution__code="partner.example", code="COHORT")
    case_id = _case(session, network, 100 + n, target="in_review", offering=cohort_course)
    # Different partner grades, one that cannot be converted (stored with its error).
    result = dict(session.scalar(select(Case.result).where(Case.id == case_id)) or {})
    result["grade"] = ("30", "27", "27", "nonsense")[n % 4]
    session.execute(update(Case).where(Case.id == case_id).values(result=result))
    return case_id


def _decide(session: Session, network: Office, cases: list[int], event: str) -> None:
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
def test_a_batch_writes_each_case_as_one_event_would(
    session: Session, network: Office, event: str
) -> None:
    cases = [_in_review(session, network, n) for n in range(5)]
    before = {c: snapshot(session, c) for c in cases}
    _decide(session, network, cases, event)
    for case_id in cases:
        after = snapshot(session, case_id)
        assert len(after["case_events"]) == len(before[case_id]["case_events"]) + 1
        assert len(after["outbox"]) > len(before[case_id]["outbox"])
        assert audit.verify(session, case_id).ok
        row = engine._load(session, case_id)
        assert row.state == {"recognize": "recognized", "reject": "rejected"}[event]
        assert row.due_kind is not None
        pending = session.scalars(
            select(Reminder.kind).where(Reminder.case_id == case_id, Reminder.done_at.is_(None))
        ).all()
        assert all(kind.startswith(row.due_kind) or kind for kind in pending)


def test_a_batch_that_loses_a_compare_and_swap_leaves_nothing_behind(
    session: Session,
    network: Office,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cases = [_in_review(session, network, n) for n in range(4)]
    before = {c: snapshot(session, c) for c in cases}
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
    assert {c: snapshot(session, c) for c in cases} == before
    assert session.scalar(select(func.count()).select_from(CaseEvent)) == events


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


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)  # prepared statements: PG
def test_postgresql_statements_are_prepared_unless_the_connection_forbids_it(
    engine: Engine,
    network: Office,
) -> None:
    for threshold, prepared in ((5, True), (None, False)):  # None: e.g. behind PgBouncer
        engine.dispose()  # a fresh connection: nothing prepared yet
        with session_factory(engine)() as s, s.begin(), bound(s):
            raw = s.connection().connection.driver_connection
            raw.prepare_threshold = threshold
            case_id = _case(s, network, 7 + prepared)
            fire(s, case_id, "withdraw", actor=student_actor(s, case_id), now=START)
            statements = [r[0] for r in raw.execute("SELECT statement FROM pg_prepared_statements")]
            assert any(q.startswith("WITH swap AS") for q in statements) is prepared
            s.rollback()
