"""The hot path of ``fire`` (``engine._load`` and ``writes.write``) runs on the session's own
DB-API cursor. These tests pin it to what SQLAlchemy itself stores and reads: the same bytes
in every column (instants, JSON) on SQLite and PostgreSQL, the same loaded row, the same
compare-and-swap, and SQLAlchemy's exception classes for driver errors."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, exc, select, update
from sqlalchemy.orm import Session

from models import Case, CaseEvent, Outbox, Reminder
from models.db import make_engine, session_factory
from tests.workflow.rows import case_rows
from workflow.cases import audit, engine
from workflow.cases import storage as writes
from workflow.cases.documents import MemoryStore
from workflow.cases.engine import fire
from workflow.demo import Network, advance, create_case

BERLIN = ZoneInfo("Europe/Berlin")
# Not UTC, with microseconds: both must survive the trip exactly as the ORM stores them.
START = dt.datetime(2026, 11, 2, 10, 15, 30, 123456, tzinfo=BERLIN)
TABLES = {"cases": "id", "case_events": "seq", "outbox": "dedup_key", "reminders": "kind, due_at"}


def _kind(session: Session) -> str:
    return session.get_bind().dialect.name


def _raw(session: Session) -> Any:
    return session.connection().connection.driver_connection


def snapshot(session: Session, case_id: int) -> dict[str, list[Any]]:
    """Every row of the case in the tables the hot path writes, as the database holds it."""
    return case_rows(session, case_id, TABLES)


def _walk(
    session: Session,
    net: Network,
    case_id: int,
    targets: tuple[str, ...],
) -> list[dict[str, list[Any]]]:
    """Advance the case through ``targets``; a snapshot after each."""
    now, store, seen = START, MemoryStore(), []
    for target in targets:
        now = advance(session, case_id, target, net, now=now, store=store)
        seen.append(snapshot(session, case_id))
    return seen


@pytest.mark.parametrize(
    "targets",
    [
        ("enrolled", "course_passed", "submitted", "in_review", "recognized", "closed"),
        (
            "info_requested",
            "in_review",
            "info_requested",
            "in_review",
            "partially_recognized",
            "appealed",
            "closed",
        ),
        ("in_review", "rejected", "closed"),
    ],
)
def test_fast_path_writes_the_same_bytes_as_core(
    session: Session,
    network: Network,
    monkeypatch: pytest.MonkeyPatch,
    targets: tuple[str, ...],
) -> None:
    case_id = create_case(
        session,
        network,
        target="planned",
        term="past",
        matriculation="77",
        name="Fast Path",
        email="fast@student.example",
    )
    fast_kind = writes.fast_kind(session.connection())
    assert fast_kind == _kind(session)

    nested = session.begin_nested()
    fast = _walk(session, network, case_id, targets)
    nested.rollback()

    monkeypatch.setattr(writes, "FAST", {})  # _load and write through SQLAlchemy Core
    nested = session.begin_nested()
    core = _walk(session, network, case_id, targets)
    nested.rollback()

    assert all(any(seen[table] for seen in fast) for table in TABLES)
    assert fast == core
    nested = session.begin_nested()
    monkeypatch.setattr(
        writes, "FAST", {("sqlite", "pysqlite"): "sqlite", ("postgresql", "psycopg"): "postgresql"}
    )
    _walk(session, network, case_id, targets)
    assert audit.verify(session, case_id).ok
    nested.rollback()


def test_load_gives_the_row_core_gives(session: Session, network: Network) -> None:
    case_id = create_case(
        session,
        network,
        target="submitted",
        term="past",
        matriculation="78",
        name="Load Me",
        email="load@student.example",
    )
    case = session.get(Case, case_id)
    assert case is not None
    case.due_at = START
    case.due_kind = "decision"
    case.decision_due_at = START + dt.timedelta(days=3, microseconds=7)
    case.appeal_ends_at = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    case.decision_paused_seconds = 12
    case.result = {"passed": True, "grade": "27 e lode", "note": "ßäö € \u2028", "n": [1, 2.5]}
    session.flush()

    conn = session.connection()
    fast = engine._load(session, case_id)
    core = conn.execute(
        engine._LOAD_LOCKED if _kind(session) == "postgresql" else engine._LOAD,
        {"case_id": case_id},
    ).one()
    assert isinstance(fast, engine.CaseRow)
    assert tuple(fast) == tuple(core)
    assert fast.due_at == START
    assert fast.due_at.tzinfo is dt.UTC
    assert engine._load(session, 999_999) is None


def test_instants_and_json_are_stored_as_the_orm_stores_them(
    session: Session,
    network: Network,
) -> None:
    case_id = create_case(
        session,
        network,
        target="submitted",
        term="past",
        matriculation="79",
        name="Orm Row",
        email="orm@student.example",
    )
    payload = {"z": 1, "a": "Grüße \u2603", "nested": {"list": [None, True, 1.25]}}
    instants = [
        START,
        dt.datetime(2026, 3, 29, 1, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 25, 2, 30, 0, 1, tzinfo=BERLIN),
    ]
    for i, at in enumerate(instants):
        session.add(Reminder(case_id=case_id, kind=f"orm.{i}", due_at=at, action="notify"))
        session.add(
            Outbox(
                dedup_key=f"orm:{i}",
                case_id=case_id,
                channel="email",
                recipient="student",
                template="t",
                payload=payload,
                status="pending",
                attempts=0,
                available_at=at,
                created_at=at,
            )
        )
    session.flush()
    utc = [at.astimezone(dt.UTC) for at in instants]
    raw = _raw(session)
    if _kind(session) == "sqlite":
        stored = raw.execute(
            "SELECT r.due_at, o.payload FROM reminders r JOIN outbox o ON "
            "o.dedup_key = 'orm:' || substr(r.kind, 5) WHERE r.kind LIKE "
            "'orm.%' ORDER BY r.kind"
        ).fetchall()
        assert [s[0] for s in stored] == [writes.sqlite_instant(at) for at in instants]
        assert all(s[1] == writes.sqlite_json(payload) for s in stored)
        # (compared in UTC: Python never equates an ambiguous local time across zones)
        assert [writes.sqlite_instant_result(s[0]) for s in stored] == utc
        assert writes.sqlite_instant(START) == "2026-11-02 09:15:30.123456"
        assert writes.sqlite_instant(instants[1]) == "2026-03-29 01:00:00.000000"
    else:
        stored = raw.execute(
            "SELECT r.due_at, o.payload::text FROM reminders r JOIN outbox o "
            "ON o.dedup_key = 'orm:' || substr(r.kind, 5) WHERE r.kind LIKE "
            "'orm.%' ORDER BY r.kind"
        ).fetchall()
        assert [writes.pg_instant_result(s[0]) for s in stored] == utc
        fast = raw.execute("SELECT %s::jsonb::text", (writes.pg_json(payload),)).fetchone()
        assert all(s[1] == fast[0] for s in stored)
    # And what the ORM reads back from rows the fast path wrote.
    fired = fire(session, case_id, "withdraw", actor=_student(session, case_id), now=START)
    session.expire_all()
    event = session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.seq == fired.seq)
    ).one()
    assert event.at == START
    assert event.at.tzinfo is dt.UTC
    assert event.data == fired.data
    assert event.hash == fired.hash


def _student(session: Session, case_id: int) -> Any:
    from workflow.demo import student_actor

    return student_actor(session, case_id)


def test_naive_instants_are_refused() -> None:
    naive = dt.datetime(2026, 1, 1)  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive datetime"):
        writes.sqlite_instant(naive)
    with pytest.raises(ValueError, match="naive datetime"):
        writes.pg_instant(naive)


def _write_for(session: Session, case_id: int) -> tuple[writes.Write, Any]:
    row = engine._load(session, case_id)
    actor = _student(session, case_id)
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


def test_a_lost_compare_and_swap_writes_nothing(session: Session, network: Network) -> None:
    case_id = create_case(
        session,
        network,
        target="submitted",
        term="past",
        matriculation="80",
        name="Cas Lost",
        email="cas@student.example",
    )
    w, _ = _write_for(session, case_id)
    stale = writes.Write(
        w.case_id, w.old_version - 1, w.case_values, w.event_row, w.outbox_rows, []
    )
    before = snapshot(session, case_id)
    session.info.pop("recog_outbox_written", None)
    assert writes.write(session.connection(), stale) is False
    assert snapshot(session, case_id) == before
    assert writes.write(session.connection(), w) is True
    after = snapshot(session, case_id)
    assert len(after["case_events"]) == len(before["case_events"]) + 1
    assert len(after["outbox"]) == len(before["outbox"]) + 1


def test_fire_marks_the_session_when_it_wrote_to_the_outbox(
    session: Session,
    network: Network,
) -> None:
    case_id = create_case(
        session,
        network,
        target="submitted",
        term="past",
        matriculation="81",
        name="Out Box",
        email="outbox@student.example",
    )
    session.info.pop("recog_outbox_written", None)
    fire(session, case_id, "withdraw", actor=_student(session, case_id), now=START)
    assert session.info.get("recog_outbox_written") is True


def test_driver_errors_surface_as_sqlalchemy_errors(session: Session, network: Network) -> None:
    case_id = create_case(
        session,
        network,
        target="submitted",
        term="past",
        matriculation="82",
        name="Dup Seq",
        email="dup@student.example",
    )
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
    fired = fire(session, case_id, "withdraw", actor=_student(session, case_id), now=START)
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


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)  # prepared statements: PG
def test_postgresql_statements_are_prepared_unless_the_connection_forbids_it(
    engine: Engine,
    network: Network,
) -> None:
    for threshold, prepared in ((5, True), (None, False)):  # None: e.g. behind PgBouncer
        engine.dispose()  # a fresh connection: nothing prepared yet
        with session_factory(engine)() as s, s.begin():
            raw = _raw(s)
            raw.prepare_threshold = threshold
            case_id = create_case(
                s,
                network,
                target="submitted",
                term="past",
                matriculation=f"83{prepared}",
                name="Prep Ared",
                email="prep@student.example",
            )
            fire(s, case_id, "withdraw", actor=_student(s, case_id), now=START)
            statements = [r[0] for r in raw.execute("SELECT statement FROM pg_prepared_statements")]
            assert any(q.startswith("WITH upd AS") for q in statements) is prepared
            s.rollback()
