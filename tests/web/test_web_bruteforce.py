"""Failed logins slow down across two real server processes sharing one database, and the
right password still works once the delay has passed."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from web_harness import PASSWORD, url_of, uvicorn_server

from models.db import session_factory, transaction
from workflow.catalog import set_user_password
from workflow.demo import seed_network

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def attempt(base: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=30) as c:
        form = c.get("/login")
        token = CSRF.search(form.text)
        assert token
        # The cookie is Secure; over plain http on 127.0.0.1 httpx would not send it back.
        cookie = form.headers["set-cookie"].split(";")[0]
        return c.post("/login", headers={"Cookie": cookie}, data={
            "username": "clerk", "password": password, "csrf": token.group(1)})


@pytest.mark.slow
def test_bruteforce_is_slowed_down_across_two_processes(engine: Engine, tmp_path: Path,
                                                        ) -> None:
    from conftest import NOW

    with transaction(session_factory(engine)) as s:
        seed_network(s, today=NOW.date())
        set_user_password(s, "clerk", PASSWORD)
    env = {"RECOG_DATABASE_URL": url_of(engine), "RECOG_DATA_DIR": str(tmp_path / "var"),
           "RECOG_ENVIRONMENT": "test"}
    with uvicorn_server(env) as one, uvicorn_server(env) as two:
        servers = [one, two]
        for i in range(3):  # the free failures, spread over both processes
            assert attempt(servers[i % 2], "wrong password").status_code == 401
        blocked = attempt(two, "wrong password")  # the other process knows
        assert blocked.status_code == 429
        wait = int(blocked.headers["retry-after"])
        assert 1 <= wait <= 2
        assert attempt(one, PASSWORD).status_code == 429  # not even the right one, yet
        time.sleep(wait)
        assert attempt(one, "wrong password").status_code == 401
        again = attempt(two, "wrong password")
        assert again.status_code == 429
        assert int(again.headers["retry-after"]) >= 2
        time.sleep(int(again.headers["retry-after"]))
        ok = attempt(two, PASSWORD)
        assert ok.status_code == 303
        assert ok.headers["location"] == "/cases"
        # A success forgets the failures: a typo afterwards is free again.
        assert attempt(one, "wrong password").status_code == 401
