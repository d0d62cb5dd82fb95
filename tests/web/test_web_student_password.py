"""Students sign in with a password where their institution enables it, through HTTP: the
password is set from a student session (a status link opens one), the sign-in name is
``<matriculation number>@<institution code>``, it opens the student's own cases only, wrong
passwords are slowed down like everyone's, and a disabled institution refuses without saying
whether the student exists."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import Engine, select
from web_harness import client, csrf_of, student_login

from models import Student
from models.db import session_factory, transaction
from workflow.errors import ValidationFailed
from workflow.office.catalog import allow_student_passwords, set_student_password
from workflow.policy import auth

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
HOME = "uni-musterstadt.de"
SECRET = "a long student passphrase"
ALERT = re.compile(r'<p class="alert" role="alert">([^<]*)</p>')


class Clock:
    """The app's clock, moved on by hand (the throttle counts in its time)."""

    def __init__(self, app: Any) -> None:
        self.now = NOW
        app.state.runtime.clock = lambda: self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(app: Any) -> Clock:
    return Clock(app)


def matriculation(engine: Engine, student_id: int) -> str:
    with session_factory(engine)() as s:
        return s.execute(
            select(Student.matriculation_number).where(Student.id == student_id)
        ).scalar_one()


def enable(engine: Engine, allowed: bool = True) -> None:
    with transaction(session_factory(engine)) as s:
        allow_student_passwords(s, HOME, allowed)


def sign_in(c: Any, username: str, password: str) -> Any:
    return c.post(
        "/login", data={"username": username, "password": password, "csrf": csrf_of(c, "/login")}
    )


def test_a_disabled_institution_refuses_without_revealing_the_student(
    app: Any, engine: Engine, world: Any, clock: Clock
) -> None:
    case_id = world.cases["rejected"]
    student_id = world.students[case_id]
    number = matriculation(engine, student_id)
    with transaction(session_factory(engine)) as s:  # a password from before it was disabled
        s.get(Student, student_id).password_hash = auth.hash_password(SECRET)  # type: ignore[union-attr]
        with pytest.raises(ValidationFailed, match="does not enable student passwords"):
            set_student_password(s, student_id, SECRET)
    answers = []
    with client(app) as c:
        for username, password in [
            (f"{number}@{HOME}", SECRET),  # exists, right password
            (f"{number}@{HOME}", "wrong password"),
            (f"9999999@{HOME}", SECRET),  # no such student
            (f"{number}@nowhere.example", SECRET),
        ]:  # no such place
            clock.advance(1000)  # past any delay: each answer is the password check's
            r = sign_in(c, username, password)
            assert r.status_code == 401, username
            assert "session" not in r.cookies
            answers.append(r.text)
        assert len(set(answers)) == 1  # byte for byte the same page
        assert ALERT.search(answers[0]).group(1) == "User name or password is wrong."  # type: ignore[union-attr]

        # From a status link the student learns that there are no passwords here.
        student_login(c, engine, student_id, clock.now)
        page = c.get("/account")
        assert page.status_code == 200
        assert "does not offer passwords for students" in page.text
        assert 'name="password"' not in page.text
        r = c.post(
            "/account/password",
            data={"password": SECRET, "password2": SECRET, "csrf": csrf_of(c, "/account")},
        )
        assert r.status_code == 403
        assert "does not offer passwords" in ALERT.search(r.text).group(1)  # type: ignore[union-attr]


def test_a_student_sets_a_password_and_it_opens_only_their_own_case(
    app: Any, engine: Engine, world: Any, clock: Clock
) -> None:
    enable(engine)
    mine, other = world.cases["rejected"], world.cases["submitted"]
    student_id = world.students[mine]
    username = f"{matriculation(engine, student_id)}@{HOME}"

    with client(app) as old, client(app) as c:
        student_login(old, engine, student_id, clock.now)  # another browser, signed in
        student_login(c, engine, student_id, clock.now)
        page = c.get("/account")
        assert page.status_code == 200
        assert f"<strong>{username}</strong>" in page.text
        assert 'autocomplete="new-password"' in page.text
        token = csrf_of(c, "/account")
        for password, password2, message in [
            ("short", "short", "at least 12 characters"),
            (SECRET, SECRET + "!", "The two passwords differ."),
        ]:
            r = c.post(
                "/account/password",
                data={"password": password, "password2": password2, "csrf": token},
            )
            assert r.status_code == 422
            assert message in ALERT.search(r.text).group(1)  # type: ignore[union-attr]
        r = c.post("/account/password", data={"password": SECRET, "password2": SECRET})
        assert r.status_code == 403  # no CSRF token, no change
        with session_factory(engine)() as s:
            assert s.get(Student, student_id).password_hash is None  # type: ignore[union-attr]

        r = c.post(
            "/account/password", data={"password": SECRET, "password2": SECRET, "csrf": token}
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/account?saved=1"
        saved = c.get("/account?saved=1")  # this browser stays signed in, on a new session
        assert saved.status_code == 200
        assert "Your password is set." in saved.text
        assert "You have set a password." in saved.text
        ended = old.get("/cases")  # every other session of the student has ended
        assert ended.status_code == 303
        assert ended.headers["location"] == "/login"

    with client(app) as c:
        r = sign_in(c, username, SECRET)
        assert r.status_code == 303
        assert r.headers["location"] == "/cases"
        home = c.get("/cases")  # one case: straight to its status page
        assert home.status_code == 303
        assert home.headers["location"] == f"/cases/{mine}"
        status = c.get(f"/cases/{mine}")
        assert status.status_code == 200
        assert 'id="form-appeal"' in status.text  # the student's view of a rejection
        for case_id in (other, world.case_b):  # another student's, another institution's
            assert c.get(f"/cases/{case_id}").status_code == 404
            assert c.get(f"/api/v1/cases/{case_id}").status_code == 404
        assert c.get(f"/api/v1/cases/{mine}").status_code == 200
        assert c.get("/transcripts").status_code == 403  # the office's pages stay closed

        # Turning student passwords off deletes them: turning it on again revives nothing.
        enable(engine, False)
        enable(engine, True)
        clock.advance(1000)
    with client(app) as c:
        assert sign_in(c, username, SECRET).status_code == 401


def test_wrong_student_passwords_are_slowed_down(
    app: Any, engine: Engine, world: Any, clock: Clock
) -> None:
    enable(engine)
    student_id = world.students[world.cases["rejected"]]
    with transaction(session_factory(engine)) as s:
        set_student_password(s, student_id, SECRET)
    username = f"{matriculation(engine, student_id)}@{HOME}"
    with client(app) as c:
        for _ in range(auth.FREE_FAILURES):
            assert sign_in(c, username, "wrong password").status_code == 401
        slowed = sign_in(c, username, "wrong password")
        assert slowed.status_code == 429
        assert slowed.headers["retry-after"] == "2"  # one second left, rounded up
        assert sign_in(c, username, SECRET).status_code == 429  # not even the right one, yet
        clock.advance(1)
        r = sign_in(c, username, SECRET)
        assert r.status_code == 303
        assert r.headers["location"] == "/cases"


def test_the_account_page_is_for_students_only(clerk: Any) -> None:
    assert clerk.get("/account").status_code == 404
    r = clerk.post(
        "/account/password", data={"password": SECRET, "password2": SECRET, "csrf": clerk.csrf}
    )
    assert r.status_code == 404


def test_the_sign_in_page_tells_students_their_user_name(anon: Any) -> None:
    en = anon.get("/login", headers={"accept-language": "en"})
    assert "your user name is your matriculation number, @, and your" in en.text
    de = anon.get("/login", headers={"accept-language": "de"})
    assert "Ihre Matrikelnummer, @ und das Kürzel" in de.text
