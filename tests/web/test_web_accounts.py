"""Office accounts across the interfaces: API tokens with scopes (read, write, admin) made by
the CLI and used against the API, tokens made by tokens and revoked with them, and a user's
life from `recog user add --invite` (the e-mail through the real relay to a real SMTP sink,
the invitation page, the first sign-in) to `recog user disable`."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from conftest import NOW
from sqlalchemy import Engine, select
from web_harness import PASSWORD, client, free_port, login, settings_for

from models import ApiToken, Outbox, User
from models.db import session_factory

HOME = "uni-musterstadt.de"


def said(result: Any) -> str:
    """What a command told: its output, or the domain error `recog` prints as one line."""
    return result.output + str(result.exception or "")


def make_token(cli: Callable[..., Any], user: str, scope: str, *extra: str) -> tuple[int, str]:
    made = cli(
        "token", "create", "--user", user, "--name", f"{user}-{scope}", "--scope", scope, *extra
    )
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("rcg_")
    listed = cli("token", "list", "--user", user, "--json")
    import json

    newest = json.loads(listed.stdout)[-1]
    assert newest["scope"] == scope
    return newest["id"], secret


@pytest.fixture
def bearer(app: Any) -> Callable[[str], Any]:
    clients: list[Any] = []

    def open_(token: str) -> Any:
        c = client(app).__enter__()
        c.headers["Authorization"] = f"Bearer {token}"
        clients.append(c)
        return c

    yield open_
    for c in clients:
        c.__exit__(None, None, None)


def test_token_scopes_across_the_api(
    cli_in_process: Callable[..., Any], bearer: Callable[[str], Any], world: Any
) -> None:
    planned = world.cases["planned"]
    _, read = make_token(cli_in_process, "clerk", "read")
    reader = bearer(read)
    assert reader.get("/api/v1/me").json()["role"] == "clerk"
    assert reader.get(f"/api/v1/cases/{planned}").status_code == 200
    assert reader.get("/api/v1/users").status_code == 200
    refused = reader.post(f"/api/v1/cases/{planned}/events", json={"event": "enrol"})
    assert refused.status_code == 403, refused.text
    assert "scope read" in refused.json()["detail"]
    assert "write" in refused.json()["detail"]
    # Nothing changed: the case is still planned.
    assert reader.get(f"/api/v1/cases/{planned}").json()["state"] == "planned"
    # A read token makes read tokens, never more.
    assert reader.post("/api/v1/tokens", json={"name": "w", "scope": "write"}).status_code == 403
    assert reader.post("/api/v1/tokens", json={"name": "r", "scope": "read"}).status_code == 201

    _, write = make_token(cli_in_process, "clerk", "write")
    writer = bearer(write)
    fired = writer.post(f"/api/v1/cases/{planned}/events", json={"event": "enrol"})
    assert fired.status_code in (200, 201), fired.text
    assert writer.get(f"/api/v1/cases/{planned}").json()["state"] == "enrolled"

    # An admin's write token may not do admin things; the admin token may.
    _, admin_write = make_token(cli_in_process, "admin", "write")
    _, admin_admin = make_token(cli_in_process, "admin", "admin")
    body = {"username": "nora", "role": "clerk", "password": "a long enough password"}
    no = bearer(admin_write).post("/api/v1/users", json=body)
    assert no.status_code == 403, no.text
    assert "scope admin" in no.json()["detail"]
    assert bearer(admin_write).post("/api/v1/users/clerk/disable").status_code == 403
    yes = bearer(admin_admin).post("/api/v1/users", json=body)
    assert yes.status_code == 201, yes.text
    # An admin scope is for admins only, whoever asks.
    clerk_admin = cli_in_process(
        "token", "create", "--user", "clerk", "--name", "x", "--scope", "admin"
    )
    assert clerk_admin.exit_code == 1
    assert "the scope admin is for an admin's tokens" in said(clerk_admin)


def test_revoking_a_token_revokes_what_it_made(
    cli_in_process: Callable[..., Any], bearer: Callable[[str], Any], engine: Engine
) -> None:
    parent_id, parent = make_token(cli_in_process, "admin", "admin", "--expires-in-days", "3")
    made = bearer(parent).post(
        "/api/v1/tokens", json={"name": "child", "scope": "write", "expires_in_days": 30}
    )
    assert made.status_code == 201, made.text
    child = made.json()
    # A child never outlives its parent.
    assert dt.datetime.fromisoformat(child["expires_at"]) == NOW + dt.timedelta(days=3)
    grand = bearer(child["token"]).post("/api/v1/tokens", json={"name": "grandchild"})
    assert grand.status_code == 201, grand.text
    assert grand.json()["scope"] == "read"
    grandchild = grand.json()["token"]
    assert bearer(grandchild).get("/api/v1/me").status_code == 200
    # A token may revoke only itself and what it made: not its parent.
    assert bearer(grandchild).delete(f"/api/v1/tokens/{parent_id}").status_code == 403
    assert bearer(parent).get("/api/v1/me").status_code == 200

    revoked = cli_in_process("token", "revoke", str(parent_id))
    assert revoked.exit_code == 0, revoked.output
    assert "3 token(s)" in revoked.output
    for secret in (parent, child["token"], grandchild):
        assert bearer(secret).get("/api/v1/me").status_code == 401
    with session_factory(engine)() as s:
        rows = s.execute(select(ApiToken.id, ApiToken.parent_id, ApiToken.revoked_at)).all()
    by_id = {r.id: r for r in rows}
    assert by_id[child["id"]].parent_id == parent_id
    assert all(by_id[i].revoked_at is not None for i in (parent_id, child["id"]))
    # Revoking a token twice, or one that does not exist: nothing to revoke, said clearly.
    again = cli_in_process("token", "revoke", "999999")
    assert again.exit_code == 1
    assert "not found" in said(again)


class _Recorder:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[int, _Recorder]]:
    recorder = _Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, recorder
    controller.stop()


def _relay(engine: Engine, settings: Any) -> Any:
    """Deliver the invitations waiting in the outbox (the world's case mails wait on)."""
    from tasks.delivery import Transports, relay

    with session_factory(engine)() as s:
        ids = list(s.scalars(select(Outbox.id).where(Outbox.template == "invitation")))
    return relay(
        session_factory(engine),
        settings=settings,
        transports=Transports.from_settings(settings),
        ids=ids,
    )


def _link(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(r"https://recog\.example/invite/(\S+)", body.get_content())
    assert found, body.get_content()
    return found.group(1)


def test_invitation_from_the_cli_to_the_first_sign_in(
    cli_in_process: Callable[..., Any],
    app: Any,
    engine: Engine,
    data_dir: Any,
    smtp_sink: tuple[int, _Recorder],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import cli.context as ctx

    port, sink = smtp_sink
    settings = settings_for(engine, data_dir).model_copy(
        update={
            "public_url": "https://recog.example",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
        }
    )
    monkeypatch.setattr(ctx, "settings", lambda: settings)

    # Without an e-mail address there is nobody to invite: refused, and nobody is added.
    no_mail = cli_in_process(
        "user", "add", "nina", "--role", "clerk", "--institution", HOME, "--invite"
    )
    assert no_mail.exit_code == 1
    assert "no e-mail address" in said(no_mail)
    assert "nina" not in cli_in_process("user", "list").output

    added = cli_in_process(
        "user", "add", "nina", "--role", "clerk", "--institution", HOME,
        "--email", "nina@uni-musterstadt.example", "--language", "en", "--invite",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "invitation to nina@uni-musterstadt.example queued" in added.output
    with session_factory(engine)() as s:
        row = s.execute(select(Outbox).where(Outbox.template == "invitation")).scalar_one()
        assert row.case_id is None
        assert "token" not in str(row.payload)  # the secret is minted at delivery, never stored

    assert _relay(engine, settings).sent == 1
    [mail] = sink.messages
    assert mail["To"] == "nina@uni-musterstadt.example"
    assert mail["Subject"] == "Your Recog account: choose your password"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Your user name is nina" in text
    assert "9 November 2026" in text  # seven days after NOW
    token = _link(mail)

    with client(app) as browser:
        landed = browser.get(f"/invite/{token}")
        assert landed.status_code == 303
        assert landed.headers["location"] == "/invite"  # the secret leaves the address bar
        form = browser.get("/invite")
        assert form.status_code == 200
        assert "Choose your password" in form.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf
        short = browser.post(
            "/invite", data={"password": "short", "password2": "short", "csrf": csrf.group(1)}
        )
        assert short.status_code == 422
        assert "at least 12 characters" in short.text
        done = browser.post(
            "/invite", data={"password": PASSWORD, "password2": PASSWORD, "csrf": csrf.group(1)}
        )
        assert done.status_code == 303, done.text
        assert browser.get("/cases").status_code == 200  # signed in

    with client(app) as again:
        used = again.get(f"/invite/{token}")
        assert used.status_code == 410
        assert "used already" in used.text
        login(again, "nina")  # the password works at the sign-in
        assert again.get("/cases").status_code == 200

        # Disabling ends the session and revokes the tokens, at once.
        _, secret = make_token(cli_in_process, "nina", "read")
        disabled = cli_in_process("user", "disable", "nina")
        assert disabled.exit_code == 0, disabled.output
        assert again.get("/cases").status_code == 303
        with client(app) as api:
            api.headers["Authorization"] = f"Bearer {secret}"
            assert api.get("/api/v1/me").status_code == 401
    listed = cli_in_process("user", "list", "--json")
    import json

    nina = next(u for u in json.loads(listed.stdout) if u["username"] == "nina")
    assert nina["active"] is False
    assert nina["has_password"] is True


def test_invitation_expires_and_unknown_links(
    cli_in_process: Callable[..., Any],
    app: Any,
    engine: Engine,
    data_dir: Any,
    smtp_sink: tuple[int, _Recorder],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import cli.context as ctx

    port, sink = smtp_sink
    settings = settings_for(engine, data_dir).model_copy(
        update={
            "public_url": "https://recog.example",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
            "invitation_days": 2,
        }
    )
    monkeypatch.setattr(ctx, "settings", lambda: settings)
    assert cli_in_process(
        "user", "add", "otto", "--role", "board", "--institution", HOME,
        "--email", "otto@uni-musterstadt.example", "--invite",
    ).exit_code == 0  # fmt: skip
    assert _relay(engine, settings).sent == 1
    [mail] = sink.messages
    assert mail["Subject"] == "Ihr Recog-Zugang: Passwort festlegen"  # his language: German
    token = _link(mail)
    with client(app) as browser:
        assert browser.get("/invite/not-a-real-token").status_code == 404
        app.state.runtime.clock = lambda: NOW + dt.timedelta(days=2, seconds=1)
        expired = browser.get(f"/invite/{token}")
        assert expired.status_code == 410
        assert "abgelaufen" in expired.text
    with session_factory(engine)() as s:
        otto = s.execute(select(User).where(User.username == "otto")).scalar_one()
        assert otto.password_hash is None  # nothing was set


def test_set_password_reads_stdin_and_user_add_warns_without_email(
    cli_in_process: Callable[..., Any], app: Any
) -> None:
    added = cli_in_process("user", "add", "paula", "--role", "clerk", "--institution", HOME)
    assert added.exit_code == 0, added.output
    assert "paula has no e-mail address and will get no notifications" in added.output
    short = cli_in_process("user", "set-password", "paula", input="short\n")
    assert short.exit_code == 1
    assert "at least 12 characters" in said(short)
    empty = cli_in_process("user", "set-password", "paula", input="")
    assert empty.exit_code == 1
    assert "no password" in said(empty)
    ok = cli_in_process("user", "set-password", "paula", input=PASSWORD + "\n")
    assert ok.exit_code == 0, ok.output
    with client(app) as c:
        login(c, "paula")
        assert c.get("/cases").status_code == 200
    unknown = cli_in_process("user", "set-password", "nobody", input=PASSWORD + "\n")
    assert unknown.exit_code == 1
