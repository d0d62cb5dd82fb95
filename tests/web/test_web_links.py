"""Links in e-mails are built from the configured public address (RECOG_PUBLIC_URL) and from
nothing a request says: whatever Host and X-Forwarded-* headers reach the status-link sends
(API, office page, the student's own page), an event's notification and the deadline sweep's
reminders, and an office user's invitation, every e-mail links to the public address. The
web answers only to the configured host names, and believes forwarded headers only from
configured proxies."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import NOW
from sqlalchemy import Engine, insert, select
from web_harness import (
    PASSWORD,
    PUBLIC_URL,
    api_token,
    client,
    settings_for,
    student_login,
    url_of,
    uvicorn_server,
)

from config.errors import ConfigurationError
from config.settings import DEVELOPMENT_URL, load_settings
from models import Outbox
from models.db import session_factory, transaction
from tasks.delivery import MemoryTransport, Transports, relay
from workflow.cases.sweep import sweep

# Everything a hostile client (or a clerk's script) may put into a request to steer a link.
HOSTILE = {
    "Host": "attacker.example",
    "X-Forwarded-Host": "attacker.example",
    "X-Forwarded-Proto": "http",
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Port": "80",
    "Forwarded": "for=203.0.113.9;host=attacker.example;proto=http",
}
LINK = re.compile(r"https?://[^\s\"'<>]+")


def _relay_all(engine: Engine, data_dir: Path) -> list[Any]:
    memory = MemoryTransport()
    result = relay(
        session_factory(engine),
        settings=settings_for(engine, data_dir),
        transports=Transports(mail=memory, webhooks=memory),
        limit=1000,
    )
    assert result.failed == 0
    return memory.mails


def _links(mail: Any) -> list[str]:
    found = []
    for kind in ("plain", "html"):
        part = mail.get_body(preferencelist=(kind,))
        if part is not None:
            found += LINK.findall(part.get_content())
    return found


def test_every_student_mail_links_to_the_public_url_whatever_the_request_said(
    app: Any, clerk: Any, clerk_api: Any, world: Any, engine: Engine, data_dir: Path
) -> None:
    # Mail already queued by the events that built the world is not what this test is about.
    with transaction(session_factory(engine)) as s:
        s.execute(Outbox.__table__.update().values(status="sent"))

    # 1. The status link through the API (an office token), under every hostile header.
    api_case = world.cases["rejected"]
    sent = clerk_api.post(
        f"/api/v1/students/{world.students[api_case]}/status-link", headers=HOSTILE
    )
    assert sent.status_code == 202, sent.text
    # 2. Through the office's case page.
    page_case = world.cases["recognized"]
    sent = clerk.post(
        f"/cases/{page_case}/status-link",
        data={"csrf": clerk.csrf, "action": "send"},
        headers=HOSTILE,
    )
    assert sent.status_code == 303, sent.text
    # 3. The student asks for one on their own page.
    own_case = world.cases["closed"]
    with client(app) as student:
        csrf = student_login(student, engine, world.students[own_case], NOW)
        sent = student.post(f"/cases/{own_case}/status-link", data={"csrf": csrf}, headers=HOSTILE)
        assert sent.status_code == 303, sent.text
    # 4. An event's notification to the student, fired through the API by the examiner.
    event_case = world.cases["in_review"]
    with client(app) as examiner_api:
        token = api_token(engine, world.users["examiner"], NOW)
        fired = examiner_api.post(
            f"/api/v1/cases/{event_case}/events",
            json={"event": "request_info", "data": {"message": "Please send the syllabus."}},
            headers={**HOSTILE, "Authorization": f"Bearer {token}"},
        )
    assert fired.status_code == 201, fired.text
    # 5. A row queued before this rule, still carrying a request's address: ignored.
    with transaction(session_factory(engine)) as s:
        student_id = world.students[world.cases["appealed"]]
        s.execute(
            insert(Outbox).values(
                dedup_key=f"status_link:{student_id}:old",
                case_id=world.cases["appealed"],
                event_seq=None,
                channel="email",
                recipient="student",
                template="status_link",
                payload={
                    "case_id": world.cases["appealed"],
                    "student_id": student_id,
                    "base_url": "http://attacker.example/",
                },
                status="pending",
                attempts=0,
                available_at=NOW,
                created_at=NOW,
            )
        )
    # 6. The deadline sweep: what fell due since the world was built (the relay runs now).
    with transaction(session_factory(engine)) as s:
        swept = sweep(s, now=dt.datetime.now(dt.UTC), settings=settings_for(engine, data_dir))
    assert swept.notifications > 0

    # 7. An office user's invitation, asked for by an admin's token under the same headers.
    with client(app) as admin_api:
        token = api_token(engine, world.users["admin"], NOW)
        invited = admin_api.post(
            f"/api/v1/users/{world.users['clerk']}/invite",
            headers={**HOSTILE, "Authorization": f"Bearer {token}"},
        )
    assert invited.status_code in (200, 201, 202), invited.text

    mails = _relay_all(engine, data_dir)
    invitations = [m for m in mails if "/invite/" in m.as_string()]
    assert len(invitations) == 1
    assert all(link.startswith(f"{PUBLIC_URL}/invite/") for link in _links(invitations[0]))
    to_students = [m for m in mails if "student.example" in str(m["To"])]
    # The three sends, the old row, the event's notification, and the sweep's at least one.
    assert sum("your status link" in m["Subject"] for m in to_students) == 4
    assert len(to_students) >= 6
    for mail in to_students:
        links = _links(mail)
        assert links, f"a student e-mail without its status link: {mail['Subject']}"
        for link in links:
            assert link.startswith(f"{PUBLIC_URL}/s/"), (mail["Subject"], link)
    everything = "".join(m.as_string() for m in mails)
    assert "attacker.example" not in everything


def test_without_a_public_url_no_link_is_sent_and_the_send_says_why(
    engine: Engine, data_dir: Path, world: Any
) -> None:
    from web.app import create_app

    settings = load_settings(database_url=url_of(engine), data_dir=data_dir, environment="test")
    assert settings.link_base is None
    application = create_app(settings)
    application.state.runtime.clock = lambda: NOW
    try:
        with client(application) as c:
            c.headers["Authorization"] = f"Bearer {api_token(engine, world.users['clerk'], NOW)}"
            student = world.students[world.cases["rejected"]]
            refused = c.post(f"/api/v1/students/{student}/status-link", headers=HOSTILE)
        assert refused.status_code == 422
        assert "RECOG_PUBLIC_URL is not set" in refused.json()["detail"]
        with session_factory(engine)() as s:
            queued = s.scalars(select(Outbox.id).where(Outbox.template == "status_link")).all()
        assert queued == []  # nothing was queued
    finally:
        application.state.runtime.engine.dispose()


def test_development_links_point_where_make_run_serves() -> None:
    dev = load_settings(environment="development")
    assert dev.link_base == DEVELOPMENT_URL == "http://127.0.0.1:8000"
    assert dev.trusted_hosts == ["127.0.0.1", "localhost"]
    configured = load_settings(environment="development", public_url="https://recog.uni-x.de/")
    assert configured.link_base == "https://recog.uni-x.de"
    assert configured.trusted_hosts == ["recog.uni-x.de", "127.0.0.1", "localhost"]
    assert load_settings(environment="test").link_base is None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RECOG_ALLOWED_HOSTS", '["https://recog.uni-x.de"]', "is not a host name"),
        ("RECOG_ALLOWED_HOSTS", '["recog.uni-x.de:443"]', "no scheme, port or path"),
        ("RECOG_TRUSTED_PROXIES", '["proxy.local"]', "is not an IP address or network"),
    ],
)
def test_host_and_proxy_settings_name_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert f"{variable}: " in str(err.value)
    assert message in str(err.value)


def test_the_web_answers_only_to_the_configured_host_names(
    engine: Engine, data_dir: Path, world: Any
) -> None:
    from web.app import create_app

    application = create_app(
        load_settings(
            database_url=url_of(engine),
            data_dir=data_dir,
            environment="test",
            public_url=PUBLIC_URL,
            allowed_hosts=["recog.example"],
        )
    )
    try:
        with client(application) as c:
            assert c.get("/login").status_code == 400  # the test client's own "testserver"
            refused = c.get("/login", headers={"Host": "attacker.example"})
            assert refused.status_code == 400
            assert c.get("/login", headers={"Host": "recog.example"}).status_code == 200
            assert c.get("/login", headers={"Host": "RECOG.example:8443"}).status_code == 200
            other = c.get("/login", headers={"Host": "recog.example.attacker.example"})
            assert other.status_code == 400
            assert refused.headers["x-content-type-options"] == "nosniff"  # still guarded
    finally:
        application.state.runtime.engine.dispose()


def _sign_in(base: str, username: str, password: str, forwarded_for: str) -> int:
    with httpx.Client(base_url=base, timeout=30) as c:
        form = c.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token
        cookie = form.headers["set-cookie"].split(";")[0]
        return c.post(
            "/login",
            headers={"Cookie": cookie, "X-Forwarded-For": forwarded_for},
            data={"username": username, "password": password, "csrf": token.group(1)},
        ).status_code


@pytest.mark.slow
@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_headers_are_believed_only_from_configured_proxies(
    trusted: bool, engine: Engine, tmp_path: Path, world: Any
) -> None:
    """Wrong passwords for different accounts from one real address are slowed down per
    client. A forged X-Forwarded-For does not make them look like many clients, unless the
    connecting address is a configured proxy (here the loopback, to prove the other half)."""

    env = {
        "RECOG_DATABASE_URL": url_of(engine),
        "RECOG_DATA_DIR": str(tmp_path / "var"),
        "RECOG_ENVIRONMENT": "test",
    }
    if trusted:
        env["RECOG_TRUSTED_PROXIES"] = '["127.0.0.0/8"]'
    with uvicorn_server(env) as base:
        codes = [
            _sign_in(base, f"nobody-{i}", "wrong", forwarded_for=f"198.51.100.{i}")
            for i in range(1, 5)
        ]
        right = _sign_in(base, world.users["clerk"], PASSWORD, forwarded_for="198.51.100.99")
    if trusted:
        assert codes == [401, 401, 401, 401]  # four clients, as the proxy says
        assert right == 303
    else:
        assert codes[:3] == [401, 401, 401]
        assert codes[3] == 429  # one client, whatever the header claims
        assert right == 429
