"""Failed logins slow down across two real server processes sharing one database (or, with a
Redis broker, sharing Redis), and the right password still works once the delay has passed."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select
from web_harness import PASSWORD, url_of, uvicorn_server

from models import LoginThrottle
from models.db import session_factory, transaction
from tests.factories import UserFactory, bound, musterstadt
from workflow.office.catalog import set_user_password
from workflow.policy import auth

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def attempt(
    base: str, password: str, username: str = "clerk", source: str | None = None
) -> httpx.Response:
    """One sign-in through a fresh client (from the loopback address ``source``, if given)."""
    transport = httpx.HTTPTransport(local_address=source) if source else None
    with httpx.Client(base_url=base, timeout=30, transport=transport) as c:
        form = c.get("/login")
        token = CSRF.search(form.text)
        assert token
        # The cookie is Secure; over plain http on 127.0.0.1 httpx would not send it back.
        cookie = form.headers["set-cookie"].split(";")[0]
        return c.post(
            "/login",
            headers={"Cookie": cookie},
            data={"username": username, "password": password, "csrf": token.group(1)},
        )


def guess_and_wait(one: str, two: str, username: str = "clerk", source: str | None = None) -> None:
    """Wrong passwords spread over both processes slow down the next attempt, whichever
    process it reaches; the right password works once the delay has passed."""
    servers = [one, two]
    for i in range(3):  # the free failures, spread over both processes
        assert attempt(servers[i % 2], "wrong password", username, source).status_code == 401
    blocked = attempt(two, "wrong password", username, source)  # the other process knows
    assert blocked.status_code == 429
    wait = int(blocked.headers["retry-after"])
    assert 1 <= wait <= 2
    # not even the right one, yet
    assert attempt(one, PASSWORD, username, source).status_code == 429
    time.sleep(wait)
    assert attempt(one, "wrong password", username, source).status_code == 401
    again = attempt(two, "wrong password", username, source)
    assert again.status_code == 429
    assert int(again.headers["retry-after"]) >= 2
    time.sleep(int(again.headers["retry-after"]))
    ok = attempt(two, PASSWORD, username, source)
    assert ok.status_code == 303
    assert ok.headers["location"] == "/cases"
    # A success forgets the failures: a typo afterwards is free again.
    assert attempt(one, "wrong password", username, source).status_code == 401


@pytest.mark.slow
def test_bruteforce_is_slowed_down_across_two_processes(
    engine: Engine,
    tmp_path: Path,
) -> None:

    with transaction(session_factory(engine)) as s, bound(s):
        musterstadt()
        set_user_password(s, "clerk", PASSWORD)
    env = {
        "RECOG_DATABASE_URL": url_of(engine),
        "RECOG_DATA_DIR": str(tmp_path / "var"),
        "RECOG_ENVIRONMENT": "test",
    }
    with uvicorn_server(env) as one, uvicorn_server(env) as two:
        guess_and_wait(one, two)


@pytest.mark.slow
@pytest.mark.redis
def test_bruteforce_is_slowed_down_across_two_processes_through_redis(
    sqlite_engine: Engine, redis_url: str, tmp_path: Path
) -> None:
    """With a Redis broker both processes count in Redis, not in the database. The machine's
    Redis may serve other runs at the same time: this one signs in as a user of its own, from
    a loopback address of its own, and deletes only its own two keys."""
    import redis

    username = f"clerk-{secrets.token_hex(4)}"
    source = ".".join(["127", *(str(secrets.randbelow(250) + 2) for _ in range(3))])
    with transaction(session_factory(sqlite_engine)) as s, bound(s):
        UserFactory(username=username, role="clerk")
        set_user_password(s, username, PASSWORD)
    keys = [f"recog:throttle:{k}" for k in auth.throttle_keys(username, source)]
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    env = {
        "RECOG_DATABASE_URL": url_of(sqlite_engine),
        "RECOG_DATA_DIR": str(tmp_path / "var"),
        "RECOG_ENVIRONMENT": "test",
        "RECOG_BROKER_URL": redis_url,
    }
    try:
        with uvicorn_server(env) as one, uvicorn_server(env) as two:
            for i in range(3):
                assert attempt([one, two][i % 2], "wrong", username, source).status_code == 401
            assert client.exists(*keys) == 2  # counted in Redis, per account and per client
            assert int(client.hget(keys[0], "failures") or 0) == 3
            with session_factory(sqlite_engine)() as s:  # and not in the database
                assert s.execute(select(func.count()).select_from(LoginThrottle)).scalar() == 0
            client.delete(*keys)  # start afresh for the common part
            guess_and_wait(one, two, username, source)
    finally:
        client.delete(*keys)
        client.close()
