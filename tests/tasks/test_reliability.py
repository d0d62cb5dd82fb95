"""Reliability (DESIGN.md sections 3 and 5): no transition, reminder or notification is lost or
duplicated when a worker is killed mid-task, Redis restarts, SMTP is down, two sweeps run at
once, a task message arrives twice or a transaction rolls back; reminders keep local time
across daylight-saving changes; webhooks are signed and carry no personal data.

Real parts only: Celery workers in their own processes (on Redis and on the embedded SQLite
broker), a private redis-server, an aiosmtpd SMTP sink, an HTTP receiver, the ``recog`` CLI.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from harness import (
    STUDENT_NAME,
    RedisServer,
    SilentSmtp,
    SmtpSink,
    WebhookReceiver,
    Worker,
    count,
    expected_ids,
    free_port,
    jobs_on,
    outbox_rows,
    recog_env,
    seed,
    send_task,
    sqlite_database,
    submit,
    wait_until,
)
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from config.settings import load_settings
from models import Case, CaseEvent, Outbox, Reminder, Role
from models.db import make_engine, session_factory, transaction
from tasks.delivery import Transports, relay
from tasks.kick import relay_soon, wrote_outbox
from tests.factories import CaseFactory, OfferingFactory, Office, bound, musterstadt, student_actor
from workflow.cases import outbox
from workflow.cases.deadlines import overtaken_kinds
from workflow.cases.engine import fire
from workflow.cases.sweep import SweepResult, sweep
from workflow.errors import GuardFailed
from workflow.policy.actors import Actor

BERLIN = ZoneInfo("Europe/Berlin")
LEASE = 5  # seconds a claimed notification stays reserved for the worker sending it


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def broker_url(kind: str, tmp_path: Path) -> tuple[str, RedisServer | None]:
    if kind == "sqlite":
        return f"sqla+sqlite:///{tmp_path / 'var' / 'broker.sqlite3'}", None
    redis = RedisServer(tmp_path / "redis").start()
    return redis.url, redis


def worker_env(tmp_path: Path, db_url: str, broker: str, smtp_port: int) -> dict[str, str]:
    return recog_env(
        data_dir=tmp_path / "var",
        database_url=db_url,
        broker_url=broker,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_security="none",
        outbox_lease_seconds=LEASE,
        outbox_backoff_seconds=1,
    )


BROKERS = [
    pytest.param("sqlite", id="sqlite-broker"),
    pytest.param("redis", id="redis-broker", marks=pytest.mark.redis),
]


# 1 --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("broker_kind", BROKERS)
def test_a_worker_killed_before_sending_loses_and_duplicates_nothing(
    broker_kind: str,
    sqlite_template: Path,
    tmp_path: Path,
) -> None:
    db_url = sqlite_database(sqlite_template, tmp_path / "var" / "recog.sqlite3")
    engine = make_engine(db_url)
    broker, redis = broker_url(broker_kind, tmp_path)
    logs = tmp_path / "logs"
    try:
        with (
            SilentSmtp() as silent,
            SmtpSink() as sink,
            Worker("doomed", worker_env(tmp_path, db_url, broker, silent.port), logs) as first,
            Worker("phoenix", worker_env(tmp_path, db_url, broker, sink.port), logs) as second,
        ):
            first.launch()
            _, (case_id,) = seed(engine, today=today(), cases=[("transcript_received", "recent")])
            with transaction(session_factory(engine)) as s:
                fired = submit(s, case_id)
            assert len(fired.outbox) == 2  # the student and the office
            first.wait_ready()
            send_task(broker, "recog.relay_outbox")
            # The worker claimed the rows and now waits for a greeting that never comes.
            wait_until(lambda: silent.accepted, timeout=30, what="the SMTP connection")
            second.launch()  # a healthy worker (with a working SMTP server) comes up
            rows = outbox_rows(engine)
            assert [(r.status, r.attempts) for r in rows] == [("pending", 1)] * 2
            leased_until = max(r.available_at for r in rows)
            assert leased_until > dt.datetime.now(dt.UTC)
            first.kill()

            second.wait_ready()
            # Nobody may send while the dead worker's lease runs; after it, the next outbox
            # sweep (beat's job, sent by hand here) delivers.
            wait_until(
                lambda: dt.datetime.now(dt.UTC) > leased_until,
                timeout=LEASE + 5,
                what="the lease to run out",
            )
            assert sink.messages == []
            send_task(broker, "recog.relay_outbox")
            sink.wait_for(2)
            again = send_task(broker, "recog.relay_outbox", kwargs={"ids": [r.id for r in rows]})
            second.wait_task(again)
            rows = outbox_rows(engine)
            assert [(r.status, r.attempts) for r in rows] == [("sent", 2)] * 2
            assert sink.by_message_id() == expected_ids(rows, load_settings())
    finally:
        if redis is not None:
            redis.stop()
        engine.dispose()


# 2 --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_redis_down_while_cases_change_loses_no_notification(
    pg_engine: Engine,
    pg_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    factory = session_factory(pg_engine)
    with (
        RedisServer(tmp_path / "redis") as redis,
        SmtpSink() as sink,
        Worker(
            "steady", worker_env(tmp_path, pg_database, redis.url, sink.port), tmp_path / "logs"
        ) as worker,
        jobs_on(monkeypatch, redis.url),
    ):
        worker.launch()
        _, cases = seed(pg_engine, today=today(), cases=[("transcript_received", "recent")] * 4)
        worker.wait_ready()
        redis.stop()
        # Two units of work (a batch of three, then one) while the broker is gone: each
        # commits, and its after-commit kick fails quietly.
        for batch in (cases[:3], cases[3:]):
            started = time.monotonic()
            with transaction(factory) as s:
                for case_id in batch:
                    submit(s, case_id)
            assert wrote_outbox(s)
            assert relay_soon() is False
            assert time.monotonic() - started < 20
        assert count(pg_engine, select(func.count()).where(Case.state == "submitted")) == 4
        rows = outbox_rows(pg_engine)
        assert len(rows) == 8
        assert {r.status for r in rows} == {"pending"}
        assert sink.messages == []

        redis.start()  # same port, empty: every queued message is gone
        # The next kick (or beat's outbox sweep) reaches the worker once it has reconnected.
        assert relay_soon() is True
        sink.wait_for(8, timeout=60)
        again = send_task(redis.url, "recog.relay_outbox")
        worker.wait_task(again)
        rows = outbox_rows(pg_engine)
        assert [(r.status, r.attempts) for r in rows] == [("sent", 1)] * 8
        assert sink.by_message_id() == expected_ids(rows, load_settings())


# 3 --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_smtp_down_backs_off_then_delivers_once_or_dead_letters(
    sqlite_template: Path,
    tmp_path: Path,
    cli: Callable[..., Any],
) -> None:
    db_url = sqlite_database(sqlite_template, tmp_path / "var" / "recog.sqlite3")
    assert cli.env["RECOG_DATABASE_URL"] == db_url  # type: ignore[attr-defined]
    engine = make_engine(db_url)
    port = free_port()
    settings = load_settings(
        database_url=db_url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        smtp_timeout=5,
        outbox_backoff_seconds=1,
        outbox_max_attempts=3,
        outbox_lease_seconds=LEASE,
    )
    factory = session_factory(engine)
    transports = Transports.from_settings(settings)

    def attempt(ids: list[int] | None = None) -> tuple[Any, tuple[dt.datetime, dt.datetime]]:
        before = dt.datetime.now(dt.UTC)
        result = relay(factory, settings=settings, transports=transports, ids=ids)
        return result, (before, dt.datetime.now(dt.UTC))

    def retried_after(row: Any, window: tuple[dt.datetime, dt.datetime], seconds: int) -> bool:
        delay = dt.timedelta(seconds=seconds)
        return bool(window[0] + delay <= row.available_at <= window[1] + delay)

    def by_id() -> dict[int, Any]:
        return {r.id: r for r in outbox_rows(engine)}

    try:
        net, cases = seed(engine, today=today(), cases=[("enrolled", "recent")] * 2)
        with transaction(factory) as s:
            for case_id in cases:  # one e-mail each, to the student
                fire(
                    s,
                    case_id,
                    "pass_course",
                    actor=net.clerk,
                    now=dt.datetime.now(dt.UTC),
                    data={"grade": "27", "scheme": "it", "date": today().isoformat()},
                )
        kept, doomed = sorted(by_id())

        # Attempt 1 fails at once (connection refused): retry 1 s later.
        result, t1 = attempt()
        assert (result.sent, result.failed, result.dead) == (0, 2, 0)
        rows = by_id()
        assert {(r.status, r.attempts) for r in rows.values()} == {("pending", 1)}
        assert "SMTP 127.0.0.1" in rows[kept].last_error
        assert all(retried_after(r, t1, 1) for r in rows.values())
        if dt.datetime.now(dt.UTC) < rows[kept].available_at - dt.timedelta(seconds=0.5):
            result, _ = attempt()  # not due yet: nothing is tried
            assert (result.sent, result.failed) == (0, 0)

        # Attempt 2, once due.
        due = max(r.available_at for r in rows.values())
        wait_until(lambda: dt.datetime.now(dt.UTC) >= due, timeout=5, what="the first retry time")
        result, t2 = attempt()
        assert (result.sent, result.failed, result.dead) == (0, 2, 0)
        rows = by_id()
        assert {(r.status, r.attempts) for r in rows.values()} == {("pending", 2)}
        assert all(retried_after(r, t2, 2) for r in rows.values())  # the delay doubles

        # Attempt 3 is the last: the doomed row fails once more and is dead-lettered ...
        due = max(r.available_at for r in rows.values())
        wait_until(lambda: dt.datetime.now(dt.UTC) >= due, timeout=5, what="the second retry time")
        result, _ = attempt([doomed])
        assert (result.failed, result.dead) == (1, 1)
        # ... while the other one goes out when the server is back: once.
        with SmtpSink(port) as sink:
            result, _ = attempt([kept])
            assert result.sent == 1
            result, _ = attempt()
            assert (result.sent, result.failed) == (0, 0)
            rows = by_id()
            assert (rows[kept].status, rows[kept].attempts, rows[kept].last_error) == (
                "sent",
                3,
                None,
            )
            assert (rows[doomed].status, rows[doomed].attempts) == ("dead", 3)
            assert sink.by_message_id() == expected_ids([rows[kept]], settings)

            # The clerk sees the dead letter (and nothing else), and puts it back in line.
            broker = f"sqla+sqlite:///{tmp_path / 'var' / 'broker.sqlite3'}"
            listed = cli("outbox", "list", "--failed", "--json", RECOG_BROKER_URL=broker).json()
            assert [(r["id"], r["status"], r["attempts"]) for r in listed] == [(doomed, "dead", 3)]
            assert "SMTP" in listed[0]["last_error"]
            cli("outbox", "retry", str(doomed), RECOG_BROKER_URL=broker)
            row = by_id()[doomed]
            assert (row.status, row.attempts) == ("pending", 0)
            result, _ = attempt()
            assert (result.sent, result.failed) == (1, 0)
            with factory() as s:
                assert outbox.listing(s, failed_only=True) == []
            rows = by_id()
            assert {r.status for r in rows.values()} == {"sent"}
            assert sink.by_message_id() == expected_ids(list(rows.values()), settings)
    finally:
        engine.dispose()


# 4 --------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_two_sweeps_at_once_send_each_reminder_once_and_fire_each_timer_once(
    pg_engine: Engine,
) -> None:
    lapsing, chased = 24, 16
    _, cases = seed(
        pg_engine,
        today=dt.date(2026, 11, 2),
        cases=[("transcript_received", "recent")] * lapsing
        + [("course_passed", "recent")] * chased,
    )
    with pg_engine.connect() as conn:
        planned = list(conn.execute(select(Reminder.__table__)))
    at = max(r.due_at for r in planned) + dt.timedelta(seconds=1)
    notify = {r.id: r for r in planned if r.action == "notify"}
    timers = {r.case_id: r for r in planned if r.action == "fire"}
    assert len(notify) == lapsing + 2 * chased
    assert len(timers) == lapsing

    settings = load_settings()
    factory = session_factory(pg_engine)
    barrier = threading.Barrier(2, timeout=30)
    results: dict[str, list[SweepResult]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def sweeper(name: str) -> None:
        try:
            barrier.wait()
            while True:  # as beat would: small batches, one transaction each, until dry
                with transaction(factory) as s:
                    result = sweep(s, now=at, settings=settings, limit=4)
                results[name].append(result)
                if not result.claimed:
                    return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sweeper, args=(name,)) for name in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a sweep did not finish"
    assert errors == []

    claimed = {name: sum(r.claimed for r in rs) for name, rs in results.items()}
    assert all(claimed.values()), f"both sweeps must have worked: {claimed}"
    assert sum(claimed.values()) == len(planned)
    fired = [f for rs in results.values() for r in rs for f in r.fired]
    assert sorted(fired) == sorted((case_id, "lapse") for case_id in timers)
    # A reminder before a deadline that had passed by the sweep is not sent with its words;
    # where the deadline has no message of its own (its lapse tells), it is not sent at all.
    overtaken = overtaken_kinds(settings)
    sent = {i: r for i, r in notify.items() if overtaken.get(r.kind, r.kind) is not None}
    assert len(sent) < len(notify)
    assert sum(r.notifications for rs in results.values() for r in rs) == len(sent)

    rows = outbox_rows(pg_engine)
    reminder_rows = [r for r in rows if r.dedup_key.startswith("reminder:")]
    assert sorted(r.dedup_key for r in reminder_rows) == sorted(
        f"reminder:{r.id}:email:{r.recipient}" for r in sent.values()
    )
    assert all(r.template == sent[int(r.dedup_key.split(":")[1])].kind for r in reminder_rows)
    lapse_rows = [r for r in rows if r.template == "lapse"]
    assert sorted((r.case_id, r.recipient) for r in lapse_rows) == sorted(
        (case_id, who) for case_id in timers for who in ("clerk", "student")
    )
    with pg_engine.connect() as conn:
        lapses = conn.execute(
            select(CaseEvent.case_id, func.count())
            .where(CaseEvent.event == "lapse")
            .group_by(CaseEvent.case_id)
        ).all()
        assert dict(lapses) == dict.fromkeys(timers, 1)
        assert (
            conn.execute(select(func.count()).where(Reminder.done_at.is_(None))).scalar_one() == 0
        )
    assert set(cases[:lapsing]) == set(timers)


# 5 --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("broker_kind", BROKERS)
def test_the_same_task_message_twice_sends_one_email(
    broker_kind: str,
    sqlite_template: Path,
    tmp_path: Path,
) -> None:
    db_url = sqlite_database(sqlite_template, tmp_path / "var" / "recog.sqlite3")
    engine = make_engine(db_url)
    broker, redis = broker_url(broker_kind, tmp_path)
    try:
        with (
            SmtpSink() as sink,
            Worker(
                "twice", worker_env(tmp_path, db_url, broker, sink.port), tmp_path / "logs"
            ) as worker,
        ):
            worker.launch()
            _, (case_id,) = seed(engine, today=today(), cases=[("transcript_received", "recent")])
            with transaction(session_factory(engine)) as s:
                submit(s, case_id)
            ids = [r.id for r in outbox_rows(engine)]
            task_id = str(uuid.uuid4())
            for _ in range(2):  # a redelivery: same id, same arguments
                send_task(broker, "recog.relay_outbox", kwargs={"ids": ids}, task_id=task_id)
            worker.wait_ready()
            worker.wait_task(task_id, count=2)
            rows = outbox_rows(engine)
            assert [(r.status, r.attempts) for r in rows] == [("sent", 1)] * 2
            assert len(sink.messages) == 2
            assert sink.by_message_id() == expected_ids(rows, load_settings())
    finally:
        if redis is not None:
            redis.stop()
        engine.dispose()


# 6 --------------------------------------------------------------------------------------------


def test_a_transition_that_rolls_back_leaves_no_trace_and_sends_nothing(
    engine: Engine,
    network: Office,
) -> None:
    factory = session_factory(engine)
    with transaction(factory) as s, bound(s):
        case_id = CaseFactory(
            state="transcript_received",
            student__matriculation_number="R1",
            student__name="Rolf Rück",
            student__email="r@example.org",
        ).id
        s.execute(delete(Outbox))  # its invented history is not mailed
    before = (outbox_rows(engine), count(engine, select(func.count(CaseEvent.id))))

    class Boom(Exception):
        pass

    written: list[str] = []

    def submit_then_fail() -> None:
        with transaction(factory) as s:
            keys = submit(s, case_id).outbox
            written.extend(s.scalars(select(Outbox.dedup_key).where(Outbox.dedup_key.in_(keys))))
            raise Boom  # the unit of work fails after the transition (say, its next step)

    with pytest.raises(Boom):
        submit_then_fail()
    assert len(written) == 2  # the rows existed inside the transaction ...
    with engine.connect() as conn:
        due = conn.execute(select(Case.due_at).where(Case.id == case_id)).scalar_one()
    # An hour before the submission deadline (not the wall clock: the case's own timeline).
    with pytest.raises(GuardFailed, match="has not passed yet"), transaction(factory) as s:
        fire(s, case_id, "lapse", actor=Actor.system(Role.TIMER), now=due - dt.timedelta(hours=1))
    assert (outbox_rows(engine), count(engine, select(func.count(CaseEvent.id)))) == before
    with engine.connect() as conn:
        state = conn.execute(select(Case.state).where(Case.id == case_id)).scalar_one()
    assert state == "transcript_received"

    with SmtpSink() as sink:
        settings = load_settings(smtp_host="127.0.0.1", smtp_port=sink.port, smtp_security="none")
        result = relay(factory, settings=settings, transports=Transports.from_settings(settings))
        assert (result.sent, result.failed) == (0, 0)
    assert sink.messages == []


# 7 --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        pytest.param(dt.date(2026, 3, 29), 7, id="spring-forward"),
        pytest.param(dt.date(2026, 10, 25), 8, id="fall-back"),
    ],
)
def test_a_reminder_on_a_dst_day_fires_once_at_nine_local(
    engine: Engine,
    day: dt.date,
    utc_hour: int,
) -> None:
    # A period ending on Saturday (no weekend shift at this institution) ends at 24:00; the
    # student is reminded of the missing transcript the next morning, on the DST Sunday.
    settings = load_settings(skip_non_working_days=False)
    factory = session_factory(engine)
    result_day = day - dt.timedelta(days=1 + settings.transcript_due_days)
    with transaction(factory) as s, bound(s):
        net = musterstadt()
        case_id = CaseFactory(
            state="enrolled",
            offering=OfferingFactory(current=True, today=dt.date(2026, 1, 15)),
            student__matriculation_number="T1",
            student__name="Tim Takt",
            student__email="t@example.org",
        ).id
        fire(
            s,
            case_id,
            "pass_course",
            actor=net.clerk,
            now=dt.datetime.combine(result_day, dt.time(12), tzinfo=dt.UTC),
            data={"grade": "27", "scheme": "it", "date": result_day.isoformat()},
            settings=settings,
        )
    nine = dt.datetime.combine(day, dt.time(9), tzinfo=BERLIN)
    assert nine.astimezone(dt.UTC) == dt.datetime.combine(day, dt.time(utc_hour), tzinfo=dt.UTC)
    with engine.connect() as conn:
        due = conn.execute(
            select(Reminder.due_at).where(
                Reminder.case_id == case_id, Reminder.kind == "transcript.remind"
            )
        ).scalar_one()
    assert due == nine

    def sweep_at(local: dt.datetime) -> SweepResult:
        with time_machine.travel(local, tick=False), transaction(factory) as s:
            return sweep(s, now=dt.datetime.now(dt.UTC), settings=settings)

    def reminders() -> list[Any]:
        return [r for r in outbox_rows(engine) if r.template == "transcript.remind"]

    assert sweep_at(nine - dt.timedelta(seconds=1)).claimed == 0
    assert reminders() == []
    assert sweep_at(nine).notifications == 1
    (row,) = reminders()
    assert row.available_at == nine
    assert row.recipient == "student"
    for later in (
        nine + dt.timedelta(seconds=1),
        nine + dt.timedelta(hours=3),
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time(8, 59), tzinfo=BERLIN),
    ):
        assert sweep_at(later).claimed == 0
    assert len(reminders()) == 1


# 8 --------------------------------------------------------------------------------------------


def test_the_appeal_window_takes_an_appeal_until_its_last_second_then_closes(
    session: Session,
    network: Office,
) -> None:
    appealing, silent = (
        CaseFactory(
            state="rejected",
            offering=OfferingFactory(past=True),
            student__matriculation_number=f"W{i}",
            student__name=f"Wanda Window {i}",
            student__email=f"w{i}@example.org",
        ).id
        for i in range(2)
    )
    ends = session.scalar(select(Case.appeal_ends_at).where(Case.id == silent))
    assert ends is not None
    assert session.scalar(select(Case.appeal_ends_at).where(Case.id == appealing)) == ends
    settings = load_settings()

    assert sweep(session, now=ends - dt.timedelta(seconds=1), settings=settings).fired == []
    fired = fire(
        session,
        appealing,
        "appeal",
        actor=student_actor(session, appealing),
        now=ends - dt.timedelta(seconds=1),
        data={"message": "I object"},
    )
    assert fired.to_state == "appealed"
    with pytest.raises(GuardFailed, match="the appeal window ended"):
        fire(
            session,
            silent,
            "appeal",
            actor=student_actor(session, silent),
            now=ends + dt.timedelta(seconds=1),
            data={"message": "Too late?"},
        )

    result = sweep(session, now=ends, settings=settings)
    assert result.fired == [(silent, "close")]
    assert sweep(session, now=ends + dt.timedelta(hours=1), settings=settings).fired == []
    states = {r.id: r.state for r in session.execute(select(Case.id, Case.state))}
    assert (states[silent], states[appealing]) == ("closed", "appealed")
    closes = session.scalar(
        select(func.count()).where(CaseEvent.case_id == silent, CaseEvent.event == "close")
    )
    assert closes == 1


# 9 --------------------------------------------------------------------------------------------


def test_a_transition_posts_one_signed_webhook_without_personal_data(
    engine: Engine,
    network: Office,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "whsec-test-7f3a9c"
    factory = session_factory(engine)
    with transaction(factory) as s, bound(s):
        case_id = CaseFactory(
            state="transcript_received",
            student__matriculation_number="9876543",
            student__name=STUDENT_NAME,
            student__email="zoe.quellmann@student.example.org",
        ).id
        s.execute(delete(Outbox))
    with WebhookReceiver() as hooks, SmtpSink() as sink:
        monkeypatch.setenv("RECOG_WEBHOOKS", json.dumps({"uni-musterstadt.de": [hooks.url]}))
        monkeypatch.setenv("RECOG_WEBHOOK_SECRET", secret)
        settings = load_settings(smtp_host="127.0.0.1", smtp_port=sink.port, smtp_security="none")
        with transaction(factory) as s:
            fired = submit(s, case_id, settings=settings)
        (key,) = [k for k in fired.outbox if ":webhook:" in k]
        transports = Transports.from_settings(settings)
        result = relay(factory, settings=settings, transports=transports)
        assert (result.sent, result.failed) == (3, 0)  # student, office, webhook
        assert relay(factory, settings=settings, transports=transports).sent == 0

        (post,) = hooks.posts
        assert post.path == "/hook"
        headers = {k.lower(): v for k, v in post.headers.items()}
        expected = hmac.new(secret.encode(), post.body, hashlib.sha256).hexdigest()
        assert headers["x-recog-signature"] == f"sha256={expected}"
        assert headers["idempotency-key"] == key
        assert headers["content-type"] == "application/json"
        body = json.loads(post.body)
        assert body == {
            "id": key,
            "case_id": case_id,
            "seq": fired.seq,
            "event": "submit",
            "state": "submitted",
        }
        raw = post.body.decode() + json.dumps(headers)
        for personal in ("Zoë", "Quellmann", "9876543", "@", "Prüfer", "Sachbearbeiterin"):
            assert personal not in raw
        assert len(sink.messages) == 2
