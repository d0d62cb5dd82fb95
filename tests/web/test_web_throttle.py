"""The login throttle's rule, the same in both backends: the database (``login_throttle``) and
Redis (one Lua script, against the machine's Redis in a database number of its own). The first
three failures are free, then the wait doubles up to 15 minutes; a key is slowed down per
account and per client; a success forgets; a quiet day forgets too. The two-process test
through real servers is in test_web_bruteforce.py."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from models import LoginThrottle
from models.db import session_factory, transaction
from web.throttle import DbThrottle, RedisThrottle, make_throttle
from workflow.policy import auth

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


class Backend:
    """One backend behind the two calls the login route makes, each in its own transaction,
    remembering every key it was given so that a test can clean up exactly those."""

    def __init__(self, kind: str, throttle: Any, engine: Engine) -> None:
        self.kind, self.throttle, self.engine = kind, throttle, engine
        self.used: set[str] = set()

    def keys(self, *labels: str) -> list[str]:
        """Fresh keys of this test (``account:…``, ``client:…``), unlike any other run's."""
        made = [f"{label}:test-{uuid.uuid4().hex}" for label in labels]
        self.used.update(made)
        return made

    def attempt(self, keys: list[str], now: dt.datetime) -> float:
        with transaction(session_factory(self.engine)) as s:
            return self.throttle.attempt(s, keys, now)

    def success(self, keys: list[str]) -> None:
        with transaction(session_factory(self.engine)) as s:
            self.throttle.success(s, keys)

    def stored(self, key: str) -> bool:
        if isinstance(self.throttle, RedisThrottle):
            return bool(self.throttle.client.exists(f"recog:throttle:{key}"))
        with session_factory(self.engine)() as s:
            return (
                s.execute(select(LoginThrottle.key).where(LoginThrottle.key == key)).first()
                is not None
            )


@pytest.fixture(params=["db", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest, sqlite_engine: Engine) -> Iterator[Backend]:
    if request.param == "db":
        yield Backend("db", DbThrottle(), sqlite_engine)
        return
    url = request.getfixturevalue("redis_url")
    throttle = RedisThrottle(url)
    b = Backend("redis", throttle, sqlite_engine)
    try:
        yield b
    finally:
        if b.used:
            throttle.client.delete(*[f"recog:throttle:{k}" for k in b.used])
        throttle.client.close()


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_make_throttle_uses_redis_only_for_a_redis_broker() -> None:
    from config.settings import load_settings

    assert isinstance(
        make_throttle(load_settings(broker_url="redis://127.0.0.1:6379/14")), RedisThrottle
    )
    assert isinstance(make_throttle(load_settings(broker_url=None)), DbThrottle)


def test_three_free_failures_then_a_doubling_delay_up_to_the_cap(backend: Backend) -> None:
    keys = backend.keys("account", "client")
    for _ in range(auth.FREE_FAILURES):
        assert backend.attempt(keys, at(0)) == 0
    now, expected, waits = 0.0, 1, []
    while expected < auth.MAX_DELAY_SECONDS:
        wait = backend.attempt(keys, at(now))  # blocked: nothing counted
        assert wait == pytest.approx(expected)
        assert backend.attempt(keys, at(now + wait - 0.5)) == pytest.approx(0.5)
        waits.append(wait)
        now += wait
        assert backend.attempt(keys, at(now)) == 0  # the window is open: counted
        expected = min(expected * 2, auth.MAX_DELAY_SECONDS)
    assert backend.attempt(keys, at(now)) == pytest.approx(auth.MAX_DELAY_SECONDS)
    assert waits[:5] == [1, 2, 4, 8, 16]
    now += auth.MAX_DELAY_SECONDS
    assert backend.attempt(keys, at(now)) == 0
    assert backend.attempt(keys, at(now)) == pytest.approx(auth.MAX_DELAY_SECONDS)  # capped


def test_slowed_down_per_account_and_per_client(backend: Backend) -> None:
    account, client = backend.keys("account", "client")
    other_account, other_client = backend.keys("account", "client")
    for _ in range(auth.FREE_FAILURES):
        assert backend.attempt([account, client], at(0)) == 0
    assert backend.attempt([account, client], at(0.5)) == pytest.approx(0.5)
    # The same account from another address, and another account from the same address.
    assert backend.attempt([account, other_client], at(0.5)) == pytest.approx(0.5)
    assert backend.attempt([other_account, client], at(0.5)) == pytest.approx(0.5)
    # A refused attempt counted nothing on the other keys: each still has three free
    # failures, and someone else from elsewhere is not slowed down at all.
    (third_account,) = backend.keys("account")
    for _ in range(auth.FREE_FAILURES):
        assert backend.attempt([third_account, other_client], at(0.5)) == 0
    assert backend.attempt([other_account, other_client], at(0.5)) == pytest.approx(1)
    (third_client,) = backend.keys("client")
    for _ in range(auth.FREE_FAILURES):
        assert backend.attempt([other_account, third_client], at(2)) == 0


def test_a_success_forgets_the_failures(backend: Backend) -> None:
    keys = backend.keys("account", "client")
    for _ in range(auth.FREE_FAILURES):
        assert backend.attempt(keys, at(0)) == 0
    assert backend.attempt(keys, at(0)) == 1
    assert backend.attempt(keys, at(1)) == 0  # the right password, this time
    backend.success(keys)
    assert not any(backend.stored(k) for k in keys)
    for _ in range(auth.FREE_FAILURES):  # three free failures again
        assert backend.attempt(keys, at(1)) == 0
    assert backend.attempt(keys, at(1)) == 1


def test_parallel_guesses_cannot_share_one_free_window(backend: Backend) -> None:
    """Counted before the password is checked, atomically: of twelve guesses sent at once,
    exactly the three free ones go ahead."""
    keys = backend.keys("account", "client")
    results: list[float] = []
    start = threading.Barrier(12)

    def guess() -> None:
        start.wait()
        results.append(backend.attempt(keys, at(0)))

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [0.0] * auth.FREE_FAILURES + [1.0] * (12 - auth.FREE_FAILURES)


def test_a_quiet_day_forgets_in_the_database(sqlite_engine: Engine) -> None:
    b = Backend("db", DbThrottle(), sqlite_engine)
    keys = b.keys("account", "client")
    for _ in range(auth.FREE_FAILURES + 2):
        b.attempt(keys, at(0) + dt.timedelta(seconds=10 * _))
    later = at(40) + auth.THROTTLE_FORGET + dt.timedelta(seconds=1)
    for _ in range(auth.FREE_FAILURES):
        assert b.attempt(keys, later) == 0
    assert b.attempt(keys, later) == 1


@pytest.mark.redis
def test_redis_keys_expire_after_the_forget_period(
    redis_url: str, sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis forgets by itself: every counted attempt renews the key's expiry (24 h; here
    shortened to one second so the test can watch it happen)."""
    throttle = RedisThrottle(redis_url)
    b = Backend("redis", throttle, sqlite_engine)
    try:
        keys = b.keys("account", "client")
        assert b.attempt(keys, at(0)) == 0
        ttl = throttle.client.ttl(f"recog:throttle:{keys[0]}")
        assert 0 < ttl <= auth.THROTTLE_FORGET.total_seconds()
        assert ttl > auth.THROTTLE_FORGET.total_seconds() - 60
        monkeypatch.setattr(auth, "THROTTLE_FORGET", dt.timedelta(seconds=1))
        for _ in range(auth.FREE_FAILURES):
            b.attempt(keys, at(0))
        assert b.attempt(keys, at(0)) > 0
        deadline = time.monotonic() + 5
        while any(b.stored(k) for k in keys):
            assert time.monotonic() < deadline, "the throttle keys did not expire"
            time.sleep(0.1)
        for _ in range(auth.FREE_FAILURES):  # forgotten: three free failures again
            assert b.attempt(keys, at(0)) == 0
    finally:
        throttle.client.delete(*[f"recog:throttle:{k}" for k in b.used])
        throttle.client.close()


@pytest.mark.redis
def test_redis_holds_no_user_name_or_address(redis_url: str, sqlite_engine: Engine) -> None:
    throttle = RedisThrottle(redis_url)
    name, address = f"ada-{uuid.uuid4().hex[:8]}", "192.0.2.77"
    keys = auth.throttle_keys(name, address)
    try:
        assert throttle.attempt(None, keys, T0) == 0  # type: ignore[arg-type]
        stored = [
            k.decode() for k in throttle.client.scan_iter(match="recog:throttle:*", count=1000)
        ]
        mine = {f"recog:throttle:{k}" for k in keys}
        assert mine <= set(stored)
        assert not any(name in k or address in k for k in stored)
    finally:
        throttle.client.delete(*[f"recog:throttle:{k}" for k in keys])
        throttle.client.close()
