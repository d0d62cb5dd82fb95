"""The Celery application: broker, serialisation, reliability settings and the beat schedule.

The broker is only a doorbell: every notification and reminder lives in the database (outbox,
reminders) and periodic sweeps deliver whatever a lost task message did not. So Redis or a
worker may go down without losing anything. Embedded default: a SQLite broker file through
kombu's SQLAlchemy transport; production: Redis (``RECOG_BROKER_URL=redis://...``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from celery import Celery

from config.settings import Settings, get_settings


def celery_config(settings: Settings) -> dict[str, Any]:
    broker = settings.broker
    options: dict[str, Any] = {}
    if broker.startswith("redis"):
        # An unacknowledged task is redelivered after this long: longer than any task runs.
        options = {
            "visibility_timeout": settings.broker_visibility_timeout,
            # A request that queues a doorbell task must not hang while Redis is down
            # (the outbox sweep delivers later): fail fast instead.
            "socket_connect_timeout": 1,
            "socket_timeout": 5,
            "max_retries": 0,
        }
    elif broker.startswith("sqla+sqlite"):
        # A sender waits for a briefly locked SQLite file instead of failing at once.
        options = {"connect_args": {"timeout": 30}}
    interval = float(settings.sweep_interval_seconds)
    return {
        "broker_url": broker,
        "broker_transport_options": options,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 2,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        # Side effects are acknowledged after they happened, and re-queued if the worker dies.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": 300,
        "task_soft_time_limit": 240,
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": {
            "deadline-sweep": {"task": "recog.sweep_deadlines", "schedule": interval},
            "outbox-sweep": {"task": "recog.relay_outbox", "schedule": interval},
            "broker-cleanup": {"task": "recog.cleanup_broker", "schedule": 3600.0},
        },
    }


@functools.cache
def celery_app() -> Celery:
    """The process's Celery app, configured from the settings on first use."""
    settings = get_settings()
    prepare_broker(settings.broker)
    app = Celery("recog", include=["tasks.jobs"])
    app.conf.update(celery_config(settings))
    return app


def prepare_broker(broker: str) -> None:
    """Create the directory of an embedded SQLite broker file (by default the data directory)
    when it is missing: kombu does not, and a first command on a fresh machine would otherwise
    fail to queue its doorbell task (OperationalError) although nothing is wrong."""
    if not broker.startswith("sqla+sqlite:///"):
        return
    database = broker.removeprefix("sqla+sqlite:///").partition("?")[0]
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
