"""What the office and the student read matches what the system does: the cohort page
without a cohort offers the choice, and every page is complete in German."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from html import escape
from html.parser import HTMLParser
from typing import Any

import web_harness


def test_cohorts_without_a_cohort_shows_the_form_to_choose_one(app: Any, world: Any) -> None:
    with web_harness.client(app) as examiner:
        web_harness.login(examiner, world.users["examiner"])
        r = examiner.get("/cohorts", headers={"Accept-Language": "de"})
        assert r.status_code == 200, r.text
        assert 'id="form-cohort-choose"' in r.text
        assert "Kohorte wählen" in r.text
        in_review = world.cases["in_review"]
        # The examiner's case in review is one of the cohorts offered, by a link and a field.
        links = re.findall(r'href="/cohorts\?offering=(\d+)&amp;module=([^"]+)"', r.text)
        assert links, r.text
        offering, module = links[0]
        assert f'<option value="{offering}"' in r.text
        chosen = examiner.get(f"/cohorts?offering={offering}&module={module}")
        assert chosen.status_code == 200
        assert f'href="/cases/{in_review}"' in chosen.text
        # A half-named cohort: the same form, saying what is wrong (no bare error page).
        half = examiner.get("/cohorts?offering=abc", headers={"Accept-Language": "de"})
        assert half.status_code == 422
        assert 'id="form-cohort-choose"' in half.text
        assert "nennt keine gültige Kohorte" in half.text


def test_cohorts_is_the_examiners_page(clerk: Any) -> None:
    r = clerk.get("/cohorts")
    assert r.status_code == 403


def _dateless_result(engine: Any, case_id: int, now: Any) -> None:
    """The partner's result of ``case_id`` as a transcript without its date delivers it."""
    from models import Role
    from models.db import session_factory, transaction
    from workflow.cases.engine import fire
    from workflow.cases.guards import FROM_TRANSCRIPT
    from workflow.policy.actors import Actor

    with transaction(session_factory(engine)) as s:
        fire(
            s,
            case_id,
            "pass_course",
            actor=Actor.system(Role.IMPORT),
            now=now,
            data={"grade": "27", "scheme": "it", "ects": "4.0", "source": FROM_TRANSCRIPT},
        )


def test_the_case_page_asks_the_clerk_for_an_unknown_result_date(
    app: Any, engine: Any, world: Any, clerk: Any
) -> None:
    from tests.web.conftest import NOW

    case_id = world.cases["enrolled"]
    _dateless_result(engine, case_id, NOW)
    page = clerk.get(f"/cases/{case_id}", headers={"Accept-Language": "de"})
    assert page.status_code == 200
    assert "unbekannt: Das Transcript nennt kein Datum." in page.text
    assert 'id="form-result-date"' in page.text
    assert "ECTS-Punkte: 4.0 laut Transcript, 5.0 laut Katalog." in page.text
    refused = clerk.post(
        f"/cases/{case_id}/result-date", data={"csrf": clerk.csrf, "date": "2999-01-01"}
    )
    assert refused.status_code == 422
    assert "lies in the future" in refused.text
    day = re.search(r'name="date" required value="([0-9-]+)"', page.text)
    assert day, "the form suggests the catalogue's exam date"
    done = clerk.post(
        f"/cases/{case_id}/result-date", data={"csrf": clerk.csrf, "date": day.group(1)}
    )
    assert done.status_code == 303
    after = clerk.get(f"/cases/{case_id}").text
    assert 'id="form-result-date"' not in after
    assert "Datum des Ergebnisses eingetragen" in after  # the timeline
    with web_harness.client(app) as examiner:
        csrf = web_harness.login(examiner, world.users["examiner"])
        seen = examiner.get(f"/cases/{case_id}")
        assert seen.status_code == 200
        forbidden = examiner.post(
            f"/cases/{case_id}/result-date", data={"csrf": csrf, "date": day.group(1)}
        )
        assert forbidden.status_code == 403


def test_the_api_records_an_unknown_result_date(engine: Any, world: Any, clerk_api: Any) -> None:
    from tests.web.conftest import NOW

    case_id = world.cases["enrolled"]
    _dateless_result(engine, case_id, NOW)
    shown = clerk_api.get(f"/api/v1/cases/{case_id}").json()
    assert [f["field"] for f in shown["result_flags"]] == ["date", "ects"]
    late = clerk_api.put(f"/api/v1/cases/{case_id}/result-date", json={"date": "2999-01-01"})
    assert late.status_code == 422
    assert "lies in the future" in late.json()["detail"]
    exam = shown["course"]["exam_date"]
    done = clerk_api.put(f"/api/v1/cases/{case_id}/result-date", json={"date": exam})
    assert done.status_code == 200, done.text
    assert done.json()["event"] == "record_result_date"
    again = clerk_api.get(f"/api/v1/cases/{case_id}").json()
    assert again["result"]["date"] == exam
    assert [f["field"] for f in again["result_flags"]] == ["ects"]


# --- every page in German: no English a person would read ----------------------------------

# Words of English sentences that German UI text never contains (as whole words). A text a
# German page shows that still holds one of them, once the data the test seeded (names, course
# titles, outcomes, messages: free text stays as its author wrote it) is taken out, is a text
# that did not go through the catalogues: "no partner grading table for ...".
ENGLISH = re.compile(
    r"\b(the|and|of|is|are|for|with|to|this|you|your|must|not|no|has|have|be|can|please|"
    r"from|by|or|at|yet|first|none|unknown|available|missing|waiting)\b",
    re.IGNORECASE,
)
# English names German uses as they are.
TERMS = re.compile(r"Transcripts? of Records|Transcript-of-Records")
# The texts a page carries besides its text nodes.
VISIBLE_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt")
# The page routes that render no page, each with why.
NOT_PAGES = {
    "/s/{token}": "the status link: a redirect",
    "/cases/{case_id}/documents/{document_id}": "a download",
    "/cases/{case_id}/export/elmo": "a download (ELMO XML)",
}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in VISIBLE_ATTRIBUTES and value:
                self.nodes.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.nodes.append(" ".join(data.split()))


def visible_texts(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    return parser.nodes


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def seeded_data(engine: Any) -> list[str]:
    """Every text the test's data holds (rows, event data, results, decisions), longest
    first: what a page shows of them is the data's, not the interface's."""
    from sqlalchemy import String, Text, select

    from models import Base

    found: set[str] = set()
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in ("outbox", "reminders"):
                continue  # what the system wrote, not the data it was given
            columns = [
                c
                for c in table.columns
                if (
                    isinstance(c.type, String | Text)
                    or c.type.__class__.__name__.startswith("JSON")
                )
                and c.name != "note"  # the transcript import's words about a result
            ]
            if not columns:
                continue
            for row in conn.execute(select(*columns)):
                for value in row:
                    found.update(_strings(value))
    return sorted((s for s in found if len(s.strip()) >= 3), key=len, reverse=True)


def english_in(html: str, data: list[str]) -> list[str]:
    """The texts of a German page that read as English once the seeded data is taken out."""
    leaks = []
    for node in visible_texts(html):
        rest = TERMS.sub(" ", node)
        for value in data:
            if value in rest:
                rest = rest.replace(value, " ")
        if ENGLISH.search(rest):
            leaks.append(node)
    return leaks


def page_routes() -> list[str]:
    from web import pages

    def walk(router: Any) -> Iterator[str]:
        for route in router.routes:
            if hasattr(route, "original_router"):
                yield from walk(route.original_router)
            elif "GET" in getattr(route, "methods", ()):
                yield route.path

    return sorted(set(walk(pages.router)))


def test_every_page_is_german_for_every_role(app: Any, engine: Any, world: Any) -> None:
    """Each page route, for each kind of user, with the demo-like world of the web tests
    (a case in each state, a result without its date, a decision form without grading
    tables), rendered in German: no text of it reads as English."""
    from tests.web.conftest import NOW
    from web.security import LANG_COOKIE

    _dateless_result(engine, world.cases["enrolled"], NOW)
    # A transcript whose results wait for a clerk, with the import's notes.
    from models.db import session_factory, transaction
    from tests.workflow.test_transcript_import import EXAMPLE
    from workflow.cases.documents import MemoryStore
    from workflow.transcripts.importing import import_transcript

    with transaction(session_factory(engine)) as s:
        import_transcript(
            s, EXAMPLE, store=MemoryStore(), now=NOW, home_institution_id=world.net.home_id
        )
    sha = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    visited: set[str] = set()
    leaks: dict[str, list[str]] = {}
    data: list[str] = []

    def check(c: Any, who: str, route: str, url: str) -> None:
        r = c.get(url, follow_redirects=True)  # / leads to /cases
        assert r.status_code in (200, 403, 404), (who, url, r.status_code)
        assert 'lang="de"' in r.text, (who, url)
        if r.status_code != 200:
            return  # a refusal: the domain's sentence, English as ADR 0009 decided
        visited.add(route)
        found = english_in(r.text, data)
        if found:
            leaks[f"{who} {url}"] = found

    in_review = world.cases["in_review"]
    with web_harness.client(app) as anon:
        anon.cookies.set(LANG_COOKIE, "de")
        data[:] = seeded_data(engine)
        check(anon, "anonymous", "/login", "/login")
        # An office user's invitation: the link (which leads on to /invite) and its form.
        from sqlalchemy import select

        from models import User
        from workflow import accounts

        with transaction(session_factory(engine)) as s:
            user_id = s.scalar(select(User.id).where(User.username == world.users["clerk"]))
            mail = accounts.invitation_for_delivery(
                s,
                {"user_id": user_id, "expires_at": (NOW + dt.timedelta(days=7)).isoformat()},
                now=NOW,
                public_url="https://recog.example",
            )
        token_path = mail.url.removeprefix("https://recog.example")
        check(anon, "anonymous", "/invite/{token}", token_path)
        check(anon, "anonymous", "/invite", "/invite")
    for who in ("clerk", "examiner", "board", "admin"):
        with web_harness.client(app) as c:
            web_harness.login(c, world.users[who])
            c.cookies.set(LANG_COOKIE, "de")
            data[:] = seeded_data(engine)
            for route in page_routes():
                if route in NOT_PAGES or route == "/login":
                    continue
                if route == "/cases/{case_id}":
                    for case_id in world.cases.values():
                        check(c, who, route, f"/cases/{case_id}")
                else:
                    check(c, who, route, route)
            check(c, who, "/cases", "/cases?overdue=1")
            check(c, who, "/transcripts", f"/transcripts?file={sha}")
            if who == "clerk":  # the import's notes, in German
                assert "Unbekannte Partnerhochschule" in c.get("/transcripts").text
            for offering, module in re.findall(
                r'href="/cohorts\?offering=(\d+)&amp;module=([^"]+)"', c.get("/cohorts").text
            ):
                check(c, who, "/cohorts", f"/cohorts?offering={offering}&module={module}")
    for state in ("transcript_received", "in_review", "info_requested", "rejected", "closed"):
        case_id = world.cases[state]
        with web_harness.client(app) as c:
            web_harness.student_login(c, engine, world.students[case_id], NOW)
            c.cookies.set(LANG_COOKIE, "de")
            data[:] = seeded_data(engine)
            for url, route in (
                ("/", "/"),
                ("/cases", "/cases"),
                (f"/cases/{case_id}", "/cases/{case_id}"),
                ("/account", "/account"),
            ):
                check(c, f"student ({state})", route, url)
    assert in_review in world.cases.values()
    unvisited = set(page_routes()) - visited - set(NOT_PAGES)
    assert not unvisited, f"page routes no user was shown: {sorted(unvisited)}"
    assert not leaks, "English on German pages:\n" + "\n".join(
        f"{where}: {texts}" for where, texts in leaks.items()
    )


# The messages whose German is rightly the English word (names, codes, loanwords German
# uses); any other message whose German equals its English is untranslated ("Transcripts").
SAME_IN_BOTH = {
    "page.app": "the product's name",
    "page.ects": "the credit system's name",
    "page.group_isced": "the classification's name",
    "page.export": "German uses the word",
    "page.partner": "German uses the word",
    "page.version": "German uses the word",
    "document.transcript": "Transcript of Records: the document's name in German too",
    "mail.office_ref": "only a placeholder",
    "mail.state_changed.student.action": "only a placeholder",
}


def test_every_message_has_its_own_german_words() -> None:
    from babel.messages.pofile import read_po

    from workflow.catalogues import catalogue_path

    def entries(language: str) -> dict[str, str]:
        with catalogue_path(language).open("rb") as fh:
            return {m.id: str(m.string) for m in read_po(fh, locale=language) if m.id}

    de, en = entries("de"), entries("en")
    same = sorted(msgid for msgid, text in de.items() if text == en.get(msgid))
    assert same == sorted(SAME_IN_BOTH), (
        "German words that are the English ones (translate them, or say in SAME_IN_BOTH why "
        f"German uses them): {sorted(set(same) - set(SAME_IN_BOTH))}; "
        f"no longer the same: {sorted(set(SAME_IN_BOTH) - set(same))}"
    )


def test_every_mail_is_german() -> None:
    """Every e-mail, for each recipient it is written for, in German: its subject, text and
    HTML hold no English once the values it was given (names, titles, messages) are out."""
    from tasks.messages import render
    from tests.workflow.test_messages import COMBINATIONS, FULL

    data = sorted((s for s in _strings(FULL) if len(s) >= 3), key=len, reverse=True)
    leaks = {}
    for template, recipient, language in COMBINATIONS:
        if language != "de":
            continue
        mail = render(template, recipient=recipient, language="de", context=FULL)
        texts = [mail.subject, *mail.text.splitlines()]
        html = "".join(f"<p>{escape(t)}</p>" for t in texts) + mail.html
        found = english_in(html, data)
        if found:
            leaks[f"{template} to {recipient}"] = found
    assert not leaks, "English in German e-mails:\n" + "\n".join(
        f"{which}: {texts}" for which, texts in leaks.items()
    )


def test_every_notice_is_german() -> None:
    """The decision notice of every deciding event, in German: no English once the data it
    was given (names, titles, reasons, the partner's words) is out."""
    from tests.workflow.test_notices import CASES, COURSE, INSTITUTION, kwargs
    from workflow.decisions.notices import render_notice_html

    given = [CASES, COURSE, INSTITUTION, {"name": "Jörg Müller-Weiß"}]
    data = sorted(
        (s for value in given for s in _strings(value) if len(s) >= 3), key=len, reverse=True
    )
    leaks = {}
    for event in CASES:
        html = render_notice_html(**kwargs(event, "de"))
        assert "Bescheid über die Anerkennung" in html
        found = english_in(html, data)
        if found:
            leaks[event] = found
    assert not leaks, f"English in German notices: {leaks}"
