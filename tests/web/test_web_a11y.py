"""Accessibility in real Chromium: axe-core (the copy bundled by axe-playwright-python) checks
the main pages in English and in German against WCAG 2.2 A/AA and axe's best practices
(labels, contrast, landmarks, headings, the page's language), and the sign-in and a case
action are done with the keyboard alone. Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import chromium_or_skip
from web_harness import PASSWORD, sign_in, student_link, uvicorn_server

from models import Student
from models.db import make_engine, session_factory, transaction
from tests.factories import (
    HOME_MODULES,
    CaseFactory,
    OfferingFactory,
    bound,
    home_modules,
    musterstadt,
)
from workflow.cases.documents import FileStore
from workflow.office.catalog import set_user_password

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One server for the module: an overdue submitted case (the clerk's action), a case in
    review (the examiner's decision forms), a rejected case (the student's status page)."""
    chromium_or_skip()
    root = tmp_path_factory.mktemp("a11y")
    db = root / "recog.sqlite3"
    shutil.copy(sqlite_template, db)
    engine = make_engine(f"sqlite:///{db}")
    now = dt.datetime.now(dt.UTC)
    store = FileStore(root / "var" / "documents")
    with transaction(session_factory(engine)) as s, bound(s):
        musterstadt()
        for user in ("clerk", "examiner"):
            set_user_password(s, user, PASSWORD)

        def course(i: int) -> Any:  # one course of last term per number, with its module
            return {
                "offering": OfferingFactory(
                    past=True, today=now.date(), institution__code="partner.example", code=f"C{i}"
                ),
                "targets": home_modules(HOME_MODULES[i][0]),
            }

        made = {
            target: CaseFactory(
                state=target,
                student__matriculation_number=f"4711{i}",
                student__name=f"Ada Lovelace {i}",
                student__email=f"ada{i}@student.example",
                student__preferred_language="en",
                store=store,
                present=now,
                **course(i),
            )
            for i, target in enumerate(("submitted", "in_review", "rejected"))
        }
        # The rejected case's student has a second case, waiting for their answer.
        made["info_requested"] = CaseFactory(
            state="info_requested",
            student=s.get(Student, made["rejected"].student_id),
            store=store,
            present=now,
            **course(3),
        )
        # A second case in review of the same course and module: a cohort for the examiner.
        made["cohort"] = CaseFactory(
            state="in_review",
            student__matriculation_number="47119",
            student__name="Bo Chen",
            student__email="bo@student.example",
            student__preferred_language="en",
            store=store,
            present=now,
            **course(1),
        )
        cases = {name: case.id for name, case in made.items()}
        student = made["rejected"].student_id
    env = {
        "RECOG_DATABASE_URL": f"sqlite:///{db}",
        "RECOG_DATA_DIR": str(root / "var"),
        "RECOG_ENVIRONMENT": "test",
    }
    with uvicorn_server(env, log=root / "server.log") as base:
        yield {"base": base, "cases": cases, "engine": engine, "student": student, "now": now}
    engine.dispose()


def axe(page: Any) -> list[dict[str, Any]]:
    from axe_playwright_python.sync_playwright import Axe

    result = Axe().run(
        page, options={"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]}
    )
    return result.response["violations"]  # type: ignore[no-any-return]


def reflow(page: Any) -> list[dict[str, Any]]:
    """WCAG 1.4.10 (which axe does not test): at 320 CSS pixels nothing but a data table in
    its own scrolling box may stick out sideways. Returns the elements that do."""
    size = page.viewport_size
    page.set_viewport_size({"width": 320, "height": 700})
    try:
        return page.evaluate("""() => {
            const out = e => e.getBoundingClientRect().right > window.innerWidth + 1;
            return [...document.querySelectorAll('body *')]
                .filter(e => out(e) && !e.closest('.table-wrap')
                             && ![...e.children].some(out))
                .slice(0, 5)
                .map(e => ({target: [e.tagName.toLowerCase() + (e.className ? '.' +
                            String(e.className).trim().split(/\\s+/).join('.') : '')],
                            failureSummary: 'ends at ' +
                            Math.round(e.getBoundingClientRect().right) + 'px'}));
        }""")  # type: ignore[no-any-return]
    finally:
        page.set_viewport_size(size)


def report(problems: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for where, violations in problems.items():
        for v in violations:
            lines.append(f"{where}: {v['id']} ({v['impact']}): {v['help']}")
            lines.extend(
                f"    {n['target']} {n['failureSummary'].splitlines()[-1].strip()}"
                for n in v["nodes"][:5]
            )
    return "\n".join(lines)


def context(browser: Any, site: Any, lang: str, **options: Any) -> Any:
    ctx = browser.new_context(locale="de-DE" if lang == "de" else "en-GB", **options)
    ctx.add_cookies([{"name": "recog_lang", "value": lang, "url": site["base"]}])
    return ctx


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "de"])
def test_main_pages_pass_axe(site: Any, browser: Any, artifacts: Path, lang: str) -> None:
    base, cases = site["base"], site["cases"]
    problems: dict[str, list[dict[str, Any]]] = {}

    def check(page: Any, name: str) -> None:
        assert page.locator("html").get_attribute("lang") == lang, name
        page.screenshot(path=str(artifacts / f"a11y-{lang}-{name}.png"), full_page=True)
        found = axe(page)
        wide = reflow(page)
        if wide:
            found.append(
                {
                    "id": "reflow",
                    "impact": "serious",
                    "help": "WCAG 1.4.10: at 320 CSS pixels the page scrolls sideways",
                    "nodes": wide,
                }
            )
        if found:
            problems[f"{lang} {name} ({page.url.removeprefix(base)})"] = found

    office = context(browser, site, lang, viewport={"width": 1280, "height": 900})
    page = office.new_page()
    page.goto(f"{base}/login")
    check(page, "login")
    page.fill("#username", "clerk")
    page.fill("#password", "wrong password")
    page.locator("form[action='/login'] button").click()
    check(page, "login-failed")
    sign_in(page, base, "clerk")
    check(page, "dashboard")
    page.goto(f"{base}/cases?overdue=1&state=submitted")
    check(page, "dashboard-filtered")
    page.goto(f"{base}/cases/{cases['submitted']}")
    check(page, "case-clerk")
    page.goto(f"{base}/transcripts")
    check(page, "transcripts")
    page.goto(f"{base}/cases/999999")
    check(page, "not-found")
    office.close()

    office = context(browser, site, lang, viewport={"width": 1280, "height": 900})
    page = office.new_page()
    sign_in(page, base, "examiner")
    page.goto(f"{base}/cases/{cases['in_review']}")
    check(page, "case-examiner")
    # Every decision form unfolded, so that axe sees its fields.
    page.locator("details").evaluate_all("ds => ds.forEach(d => { d.open = true; })")
    check(page, "decision-forms")
    page.goto(f"{base}/cases")
    page.locator("a[href^='/cohorts?']").first.click()
    page.wait_for_url(f"{base}/cohorts?**")
    check(page, "cohort")
    office.close()

    phone = context(
        browser,
        site,
        lang,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
    )
    page = phone.new_page()
    page.goto(f"{base}/s/{student_link(site['engine'], site['student'], site['now'])}")
    page.wait_for_url(f"{base}/cases")
    check(page, "student-home")
    page.goto(f"{base}/cases/{cases['rejected']}")
    check(page, "student-status")
    page.goto(f"{base}/cases/{cases['info_requested']}")
    check(page, "student-answer")
    page.goto(f"{base}/account")
    check(page, "student-account")
    phone.close()

    if problems:
        (artifacts / f"a11y-{lang}-violations.json").write_text(json.dumps(problems, indent=1))
    assert not problems, "accessibility violations (axe-core, reflow):\n" + report(problems)


def tab_to(page: Any, selector: str, limit: int = 40) -> None:
    """Press Tab until ``selector`` has the focus, and check that the focus is visible."""
    target = page.locator(selector)
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("e => e === document.activeElement"):
            outline = target.evaluate("e => getComputedStyle(e).outlineStyle")
            assert outline not in ("none", ""), f"{selector} has the focus but no outline"
            return
    raise AssertionError(f"{limit} presses of Tab did not reach {selector}")


@pytest.mark.slow
def test_sign_in_and_start_a_review_with_the_keyboard_only(
    site: Any, browser: Any, artifacts: Path
) -> None:
    base, case_id = site["base"], site["cases"]["submitted"]
    ctx = context(browser, site, "en", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(f"{base}/login")
    page.locator("body").evaluate("b => document.activeElement.blur()")
    tab_to(page, "a.skip")  # the first stop: skip to the content
    tab_to(page, "#username")
    page.keyboard.type("clerk")
    tab_to(page, "#password", limit=1)
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/cases")

    tab_to(page, f"a[href='/cases/{case_id}']", limit=80)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/cases/{case_id}")
    tab_to(page, "#start-examiner", limit=80)
    while page.locator("#start-examiner").input_value() != "examiner":
        page.keyboard.press("ArrowDown")
    tab_to(page, "#form-start_review button", limit=5)
    page.screenshot(path=str(artifacts / "a11y-keyboard-start-review.png"), full_page=True)
    with page.expect_navigation():  # post, redirect, and the same address again
        page.keyboard.press("Enter")
    assert page.url == f"{base}/cases/{case_id}"
    assert page.locator(".badge.big.s-in_review").count() == 1
    ctx.close()
