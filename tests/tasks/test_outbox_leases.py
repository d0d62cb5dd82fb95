"""The outbox's leases (security issue, item 3): a relay holds each row under its claim's token,
renews the lease right before delivering the row, records the outcome only while it still
holds it, and ends its batch after half a lease. Two relays against one slow SMTP server and a
lease shorter than the batch deliver every row exactly once. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from harness import SmtpSink, WebhookReceiver, outbox_rows, seed, submit
from sqlalchemy import Engine, delete, select

from config.settings import Settings, load_settings
from models import Outbox
from models.db import session_factory, transaction
from tasks.delivery import RelayResult, Transports, relay
from tests.factories import CaseFactory, musterstadt
from workflow.cases import outbox
from workflow.errors import ValidationFailed

LEASE = 5  # seconds; the smallest lease the settings accept
DELAY = 1.0  # seconds the slow SMTP server takes per message
CASES = 6  # two e-mails (student, office) and one webhook each: 12 s of mail, > 2 leases
HOOKS = "uni-musterstadt.de"


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _submitted(engine: Engine, settings: Settings, cases: int) -> None:
    _, ids = seed(engine, today=today(), cases=[("transcript_received", "recent")] * cases)
    with transaction(session_factory(engine)) as s:
        for case_id in ids:
            submit(s, case_id, settings=settings)


def test_only_the_holder_of_a_lease_renews_records_or_releases(engine: Engine) -> None:
    settings = load_settings(outbox_lease_seconds=LEASE, outbox_max_attempts=3)
    _submitted(engine, settings, 1)
    factory = session_factory(engine)
    t0 = dt.datetime.now(dt.UTC)
    with transaction(factory) as s:
        first = outbox.claim(s, now=t0, settings=settings)
    assert len(first) == 2
    assert len({c.lease for c in first}) == 1
    assert first[0].lease
    with transaction(factory) as s:  # while the lease runs, nobody else gets the rows
        assert outbox.claim(s, now=t0 + dt.timedelta(seconds=LEASE - 1), settings=settings) == []
        # ... and a clerk's retry would send a row being delivered a second time
        with pytest.raises(ValidationFailed, match=r"being delivered by a relay"):
            outbox.retry(s, first[0].id, now=t0 + dt.timedelta(seconds=1))

    # The first relay stood still past its lease; a second relay claims the same rows.
    later = t0 + dt.timedelta(seconds=LEASE + 1)
    with transaction(factory) as s:
        second = outbox.claim(s, now=later, settings=settings)
    assert [c.id for c in second] == [c.id for c in first]
    assert second[0].lease != first[0].lease
    assert second[0].attempts == 2
    stale, fresh = first[0], second[0]
    with transaction(factory) as s:
        assert outbox.renew(s, stale, now=later, settings=settings) is False
        assert outbox.mark_sent(s, stale, now=later) is False
        error = "SMTP down"
        assert outbox.mark_failed(s, stale, now=later, error=error, settings=settings) is None
        assert outbox.release(s, [stale], now=later) == 0
    with factory() as s:
        row = s.get(Outbox, fresh.id)
        assert row is not None
        # Untouched by the stale relay: still pending, leased to the second one.
        assert (row.status, row.lease_token, row.attempts) == ("pending", fresh.lease, 2)
        assert row.available_at == later + dt.timedelta(seconds=LEASE)
        assert row.last_error is None

    with transaction(factory) as s:
        assert outbox.renew(s, fresh, now=later + dt.timedelta(seconds=2), settings=settings)
        assert outbox.mark_sent(s, fresh, now=later + dt.timedelta(seconds=3)) is True
        # The other row: the holder hands it back unstarted; the claim is no attempt then.
        assert outbox.release(s, [second[1]], now=later) == 1
    with factory() as s:
        rows = {r.id: r for r in s.scalars(select(Outbox))}
    assert (rows[fresh.id].status, rows[fresh.id].lease_token) == ("sent", None)
    handed_back = rows[second[1].id]
    assert (handed_back.status, handed_back.lease_token, handed_back.attempts) == (
        "pending",
        None,
        1,
    )
    with transaction(factory) as s:  # due again at once, for any relay
        assert [c.id for c in outbox.claim(s, now=later, settings=settings)] == [second[1].id]


def test_two_relays_and_a_slow_mail_server_deliver_every_row_exactly_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink(delay=DELAY) as sink, WebhookReceiver() as hooks:
        monkeypatch.setenv("RECOG_WEBHOOKS", json.dumps({HOOKS: [hooks.url]}))
        monkeypatch.setenv("RECOG_WEBHOOK_SECRET", "whsec-test-lease-3b1e")
        settings = load_settings(
            smtp_host="127.0.0.1",
            smtp_port=sink.port,
            smtp_security="none",
            smtp_timeout=10,
            outbox_lease_seconds=LEASE,
        )
        _submitted(engine, settings, CASES)
        rows = outbox_rows(engine)
        assert Counter(r.channel for r in rows) == {"email": 2 * CASES, "webhook": CASES}
        assert 2 * CASES * DELAY > 2 * LEASE  # one relay alone could not send all in a lease

        factory = session_factory(engine)
        results: list[RelayResult] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def pending() -> bool:
            with factory() as s:
                return s.scalar(select(Outbox.id).where(Outbox.status == "pending")) is not None

        def relay_until_done() -> None:
            # What beat's outbox sweep and the after-commit kicks do, as fast as they can.
            try:
                transports = Transports.from_settings(settings)  # its own SMTP connection
                deadline = time.monotonic() + 120
                while pending() and time.monotonic() < deadline:
                    result = relay(factory, settings=settings, transports=transports, limit=500)
                    with lock:
                        results.append(result)
                    time.sleep(0.05)
            except BaseException as exc:
                errors.append(exc)

        relays = [threading.Thread(target=relay_until_done) for _ in range(2)]
        for thread in relays:
            thread.start()
        for thread in relays:
            thread.join(timeout=180)
        assert not errors, errors
        assert not any(thread.is_alive() for thread in relays)

        rows = outbox_rows(engine)
        assert {(r.status, r.attempts, r.lease_token) for r in rows} == {("sent", 1, None)}
        mails = sink.by_message_id()
        assert len(mails) == 2 * CASES
        assert set(mails.values()) == {1}, f"sent more than once: {mails.most_common(3)}"
        keys = Counter(p.headers["Idempotency-Key"] for p in hooks.posts)
        assert len(keys) == CASES
        assert set(keys.values()) == {1}
        # Batches were cut by time (half a lease), not by rows, and no lease ran out.
        assert sum(r.released for r in results) > 0
        assert sum(r.taken_over for r in results) == 0
        assert sum(r.sent for r in results) == 3 * CASES


class StallingMail:
    """The mail transport of a relay that stands still (a hung connection, a swapped-out
    process) in its first delivery until told to go on, then sends through real SMTP."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.stalled = threading.Event()
        self.go_on = threading.Event()

    def send(self, message: Any) -> None:
        if not self.stalled.is_set():
            self.stalled.set()
            self.go_on.wait(timeout=60)
        self.inner.send(message)

    def close(self) -> None:
        self.inner.close()


def test_a_relay_that_stood_still_past_its_lease_sends_nothing_more(engine: Engine) -> None:
    """The first relay stalls in its first delivery longer than a lease; a second relay
    claims both rows and sends them. When the first goes on, its first message (already on
    its way) arrives a second time under the same Message-ID, as at-least-once allows; it
    records nothing, and its second row, whose lease it lost, it does not send."""
    with SmtpSink() as sink:
        settings = load_settings(
            smtp_host="127.0.0.1",
            smtp_port=sink.port,
            smtp_security="none",
            outbox_lease_seconds=LEASE,
        )
        _submitted(engine, settings, 1)
        factory = session_factory(engine)
        stalling = StallingMail(Transports.from_settings(settings).mail)
        stalled_transports = Transports(
            mail=stalling, webhooks=Transports.from_settings(settings).webhooks
        )
        first: list[RelayResult] = []
        thread = threading.Thread(
            target=lambda: first.append(
                relay(factory, settings=settings, transports=stalled_transports)
            )
        )
        thread.start()
        assert stalling.stalled.wait(timeout=30)
        time.sleep(LEASE + 0.5)
        second = relay(factory, settings=settings, transports=Transports.from_settings(settings))
        assert (second.sent, second.taken_over) == (2, 0)
        stalling.go_on.set()
        thread.join(timeout=60)
        # Its first row: sent, but no longer its own to record; its time is up then, so it
        # hands back the second row, which it finds taken over too.
        assert (first[0].sent, first[0].failed, first[0].taken_over) == (0, 0, 1)
        assert first[0].released == 0
        counts = sink.by_message_id()
        assert len(sink.messages) == 3
        assert sorted(counts.values()) == [1, 2]
        rows = outbox_rows(engine)
        assert {(r.status, r.attempts) for r in rows} == {("sent", 2)}


@pytest.mark.slow
def test_recog_outbox_relay_goes_on_until_every_batch_is_done(
    cli: Callable[..., Any], cli_db: Any
) -> None:
    """`recog outbox relay` delivers what is due now: when a batch ends after half a lease,
    it claims the rest in the next one, each row once."""
    with cli_db() as s:
        musterstadt()
        ids = [
            CaseFactory(
                state="transcript_received",
                student__matriculation_number=f"L{i}",
                student__email=f"l{i}@student.example.org",
            ).id
            for i in range(3)
        ]
        s.execute(delete(Outbox))
        for case_id in ids:  # two e-mails each: the student and the office
            submit(s, case_id)
    with SmtpSink(delay=DELAY) as sink:
        out = cli(
            "outbox",
            "relay",
            RECOG_SMTP_HOST="127.0.0.1",
            RECOG_SMTP_PORT=str(sink.port),
            RECOG_SMTP_SECURITY="none",
            RECOG_OUTBOX_LEASE_SECONDS=str(LEASE),
        ).out
        assert "outbox: 6 sent, 0 failed" in out
        counts = sink.by_message_id()
        assert len(counts) == 6
        assert set(counts.values()) == {1}
