"""The pages over HTTP: security headers, language, sign-in and out, status links, the
dashboard's filters and the forms' refusals."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine, select
from web_harness import client, csrf_of, login, student_link, student_login

from models import User
from models.db import session_factory, transaction
from workflow.policy import auth


def test_security_headers_and_no_store(anon: Any, clerk: Any, world: Any) -> None:
    for r in (anon.get("/login"), clerk.get("/cases"), clerk.get("/api/v1/cases")):
        h = r.headers
        assert "unsafe-inline" not in h["content-security-policy"]
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["strict-transport-security"].startswith("max-age=")
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
        assert h["cache-control"] == "no-store"
    assert "no-store" not in anon.get("/static/app.css").headers["cache-control"]
    docs = anon.get("/api/docs")
    assert docs.status_code == 200
    # No inline script at all now (test_web_api_docs.py): the page's own origin only.
    assert "script-src 'self';" in docs.headers["content-security-policy"]


def test_language_by_browser_and_by_choice(app: Any) -> None:
    with client(app) as c:
        assert "Anmelden" in c.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9"}).text
        assert "Sign in" in c.get("/login", headers={"Accept-Language": "en-GB"}).text
        token = csrf_of(c, "/login")
        r = c.post("/language", data={"lang": "de", "csrf": token, "back": "/login"})
        assert r.status_code == 303
        assert "Anmelden" in c.get("/login", headers={"Accept-Language": "en"}).text


def test_pages_in_two_languages_at_once_never_mix(app: Any) -> None:
    """Each render carries its own language's words (no environment is shared between
    languages), so German and English requests served at the same time never mix."""
    words = {"de": ("Anmelden", "Benutzername"), "en": ("Sign in", "User name")}

    with client(app) as c:

        def fetch(lang: str) -> tuple[str, str]:
            return lang, c.get("/login", headers={"Accept-Language": lang}).text

        with ThreadPoolExecutor(max_workers=8) as pool:
            pages = list(pool.map(fetch, ["de", "en"] * 30))
    for lang, text in pages:
        other = "en" if lang == "de" else "de"
        assert all(f">{word}<" in text for word in words[lang]), lang
        assert not any(f">{word}<" in text for word in words[other]), lang


def test_a_signed_in_choice_of_language_is_kept_for_the_account(clerk: Any, engine: Engine) -> None:
    """The choice is stored with the user, so her e-mails and next sign-in use it too."""
    for lang in ("en", "de"):
        r = clerk.post("/language", data={"lang": lang, "csrf": clerk.csrf, "back": "/cases"})
        assert r.status_code == 303
        with session_factory(engine)() as s:
            user = s.scalars(select(User).where(User.username == "clerk")).one()
            assert user.preferred_language == lang


def test_sign_in_dashboard_and_sign_out(clerk: Any, world: Any) -> None:
    page = clerk.get("/cases?overdue=1&sort=due_at")
    assert page.status_code == 200
    assert 'class="overdue"' in page.text
    assert clerk.get("/cases?state=rejected").text.count('href="/cases/') >= 1
    case_page = clerk.get(f"/cases/{world.cases['submitted']}")
    assert 'id="form-start_review"' in case_page.text
    assert clerk.post("/logout", data={"csrf": clerk.csrf}).status_code == 303
    assert clerk.get("/cases").headers["location"] == "/login"


def test_wrong_password_says_nothing_specific(anon: Any) -> None:
    token = csrf_of(anon, "/login")
    for user in ("clerk", "nobody"):
        r = anon.post("/login", data={"username": user, "password": "wrong", "csrf": token})
        assert r.status_code == 401
        assert "wrong" in r.text.lower() or "falsch" in r.text.lower()


def test_status_link_landing_expiry_and_revocation(
    app: Any,
    engine: Engine,
    world: Any,
) -> None:
    from conftest import NOW

    case_id = world.cases["rejected"]
    student = world.students[case_id]
    with client(app) as c:
        token = student_link(engine, student, NOW)
        r = c.get(f"/s/{token}")
        assert r.status_code == 303
        assert r.headers["location"] == "/cases"  # no token, no name in the next URL
        page = c.get(f"/cases/{case_id}")
        assert 'id="form-appeal"' in page.text
        assert "decision" in page.text
        assert c.get("/s/not-a-valid-token").status_code == 404
    with transaction(session_factory(engine)) as s:
        old = auth.mint_status_link(s, student, now=NOW - dt.timedelta(days=31))
    with client(app) as c:
        assert c.get(f"/s/{old}").status_code == 404  # expired
        csrf = student_login(c, engine, student, NOW)
        with transaction(session_factory(engine)) as s:
            auth.revoke_status_links(s, student, now=NOW)
        assert c.get(f"/cases/{case_id}").status_code == 303  # the link's session ended
        assert csrf


def test_refused_form_shows_the_reason(clerk: Any, world: Any) -> None:
    case_id = world.cases["enrolled"]
    r = clerk.post(
        f"/cases/{case_id}/events",
        data={"csrf": clerk.csrf, "event": "pass_course", "date": "2026-10-01"},
    )
    assert r.status_code == 422
    assert "grade" in r.text
    stale = clerk.post(
        f"/cases/{case_id}/events",
        data={"csrf": clerk.csrf, "event": "fail_course", "date": "2026-10-01", "version": "1"},
    )
    assert stale.status_code == 412


def test_student_page_after_the_appeal_window(app: Any, engine: Engine, world: Any) -> None:
    """Inside the appeal window the student is told they may object and gets the form;
    once it has ended (before the sweep closes the case) the page says the decision became
    final, shows no objection form and does not call the student late."""
    from conftest import NOW

    from models import Case

    case_id = world.cases["rejected"]
    with session_factory(engine)() as s:
        ends = s.get(Case, case_id).appeal_ends_at  # type: ignore[union-attr]
    assert ends is not None
    assert ends > NOW
    with client(app) as c:
        student_login(c, engine, world.students[case_id], NOW)
        inside = c.get(f"/cases/{case_id}").text
        assert "You may object within the period." in inside
        assert 'id="form-appeal"' in inside
        later = ends + dt.timedelta(days=3)
        app.state.runtime.clock = lambda: later
    with client(app) as c:  # the earlier session has expired by then
        student_login(c, engine, world.students[case_id], later)
        after = c.get(f"/cases/{case_id}").text
    assert "the period for objections ended on" in after
    assert "You may object within the period." not in after
    assert 'id="form-appeal"' not in after
    assert "days late" not in after


def test_document_kinds_in_the_page_language(clerk: Any, world: Any) -> None:
    case_id = world.cases["submitted"]
    german = clerk.get(f"/cases/{case_id}").text  # the clerk's own language
    assert '<option value="correspondence">Schriftverkehr</option>' in german
    assert '<option value="evidence">Nachweis</option>' in german
    token = csrf_of(clerk, f"/cases/{case_id}")
    clerk.post("/language", data={"lang": "en", "csrf": token, "back": "/cases"})
    english = clerk.get(f"/cases/{case_id}").text
    assert '<option value="correspondence">Correspondence</option>' in english


def test_pages_show_times_in_the_institutions_zone(clerk: Any, engine: Engine, world: Any) -> None:
    """An institution with a zone of its own (New York, not the installation's Berlin): its
    office and its students read every time on the pages in that zone."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import update

    from models import Case, Institution
    from workflow import format_datetime

    case_id = world.cases["in_review"]
    with transaction(session_factory(engine)) as s:
        s.execute(
            update(Institution)
            .where(Institution.id == world.net.home_id)
            .values(timezone="America/New_York")
        )
        due = s.scalar(select(Case.due_at).where(Case.id == case_id))
    assert due is not None
    page = clerk.get(f"/cases/{case_id}").text  # the clerk reads German
    assert format_datetime(due.astimezone(ZoneInfo("America/New_York")), "de") in page
    assert format_datetime(due.astimezone(ZoneInfo("Europe/Berlin")), "de") not in page


def test_the_case_page_offers_what_the_permission_table_allows(app: Any, world: Any) -> None:
    """The upload form, its kinds, the status-link card and the transcripts link follow the one
    permission table (workflow/policy/permissions.py), not a role list of the template."""
    from workflow import Action, Actor, allowed, document_kinds
    from workflow.policy.actors import Role

    case_id = world.cases["in_review"]
    for who in ("clerk", "examiner", "board", "admin"):
        with client(app) as c:
            login(c, world.users[who])
            page = c.get(f"/cases/{case_id}").text
        actor = Actor(Role(who), 1, 1)
        kinds = document_kinds(actor)
        assert (f'action="/cases/{case_id}/documents"' in page) == bool(kinds), who
        for kind in kinds:
            assert f'<option value="{kind}">' in page, (who, kind)
        assert ('action="/cases/' in page and "/status-link" in page) == allowed(
            actor, Action.REVOKE_STATUS_LINKS
        ), who
        assert ('href="/transcripts"' in page) == allowed(actor, Action.IMPORT_TRANSCRIPT), who
