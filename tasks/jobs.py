"""Celery tasks: thin adapters that open a session, call one workflow function and commit.

Tasks take ids, never ORM objects; they are idempotent by database keys (outbox dedup keys,
reminder unique keys), acknowledged late and re-queued if a worker dies, so a message
delivered twice has one effect. ``celery -A tasks.jobs worker`` runs them.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any

from celery.signals import worker_init
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from config.celery import celery_app
from config.settings import get_settings
from models.db import make_engine, session_factory, transaction
from tasks.delivery import Transports, relay
from tasks.messages import check_procedure
from workflow import sweep

log = logging.getLogger("recog.tasks")
app = celery_app()


@worker_init.connect  # type: ignore[untyped-decorator]
def _check_procedure(**_kwargs: Any) -> None:
    """A worker does not start with a procedure naming an e-mail it cannot write."""
    check_procedure()


@functools.cache
def _factory() -> sessionmaker[Session]:
    # Created on first use inside the worker process (after the prefork), never at import.
    return session_factory(make_engine(get_settings().db_url))


@app.task(name="recog.relay_outbox", acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def relay_outbox(ids: list[int] | None = None) -> dict[str, int]:
    """Deliver due outbox rows (the given ones, or any that are due)."""
    settings = get_settings()
    result = relay(
        _factory(),
        settings=settings,
        transports=Transports.from_settings(settings),
        ids=ids,
        limit=500,
    )
    if result.sent or result.failed or result.released:
        log.info(
            "outbox: %d sent, %d failed (%d dead-lettered), %d left for the next relay",
            result.sent,
            result.failed,
            result.dead,
            result.released,
        )
    if result.released:  # the batch's time was up (see ``relay``): the next relay goes on
        relay_outbox.delay(ids)
    return {
        "sent": result.sent,
        "failed": result.failed,
        "dead": result.dead,
        "released": result.released,
    }


@app.task(name="recog.sweep_deadlines", acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def sweep_deadlines() -> dict[str, Any]:
    """Carry out due reminders, escalations and timer events; then deliver what they wrote."""
    settings = get_settings()
    with transaction(_factory()) as session:
        result = sweep(session, now=dt.datetime.now(dt.UTC), settings=settings)
    if result.claimed:
        log.info(
            "sweep: %d due, %d notifications, %d timer events, %d refused",
            result.claimed,
            result.notifications,
            len(result.fired),
            len(result.refused),
        )
    if result.notifications or result.fired:
        relay_outbox.delay()
    return {
        "claimed": result.claimed,
        "notifications": result.notifications,
        "fired": len(result.fired),
        "refused": len(result.refused),
    }


@app.task(name="recog.cleanup_broker", ignore_result=True)  # type: ignore[untyped-decorator]
def cleanup_broker() -> int:
    """kombu's SQLAlchemy transport keeps delivered messages (visible = false); drop them."""
    url = get_settings().broker
    if not url.startswith("sqla+"):
        return 0
    engine = make_engine(url.removeprefix("sqla+"))
    try:
        with engine.begin() as conn:
            deleted = conn.execute(text("DELETE FROM kombu_message WHERE visible = 0")).rowcount
    finally:
        engine.dispose()
    return int(deleted or 0)
