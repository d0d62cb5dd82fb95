"""Every decision's legal remedy, told the same way by all three: the procedure (what the
engine lets happen), the notice and the e-mail (the instructions on legal remedies) and the
student's page (the forms it offers). An objection (§ 70 VwGO) lies against every decision
of the office, a full recognition too; against the board's decision on an objection, an
action at the court. No decision is closed before its appeal window ends, unless the student
waives the remedy. docs/adr/0015-appeal-and-finality.md"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from conftest import NOW
from sqlalchemy import Engine, select
from web_harness import client, settings_for, student_login

from config.procedure import get_procedure
from models import Case, CaseEvent, Module, Role
from models.db import session_factory, transaction
from tasks.messages import render
from tests.factories import CaseFactory, Cast, bound, event_data
from workflow.cases.engine import fire
from workflow.cases.guards import decision_events, decisions_on_objection, objectionable
from workflow.decisions.notice_issue import notice_inputs
from workflow.decisions.notices import render_notice_html
from workflow.errors import GuardFailed
from workflow.policy.actors import Actor

DECIDED = NOW - dt.timedelta(days=1)  # the appeal window is open at NOW, the app's clock
OBJECTION = "objection (Widerspruch)"
ACTION = "action (Klage)"


def _outcomes() -> list[tuple[str, bool]]:
    """Every deciding event, and whether an objection lies against its decision."""
    proc = get_procedure()
    office = objectionable(proc)
    board = decision_events(proc) & decisions_on_objection(proc)
    assert office
    assert board
    return [(name, True) for name in sorted(office)] + [(name, False) for name in sorted(board)]


def _decide(engine: Engine, event: str) -> tuple[int, int]:
    """A case decided by ``event`` a day before NOW: its id and its student's."""
    proc = get_procedure()
    ev = proc.events[event]
    with transaction(session_factory(engine)) as s, bound(s):
        case = CaseFactory(state=ev.sources[0])
        programme_modules = s.scalars(
            select(Module.code).where(Module.programme_id == case.programme_id).order_by(Module.id)
        ).all()
        targets = [code for code in programme_modules if code in {t.code for t in case.targets}]
        others = [code for code in programme_modules if code not in targets]
        fire(
            s,
            case.id,
            event,
            actor=Cast(s, case.id)(ev.actors[0]),
            now=DECIDED,
            data=event_data(ev, now=DECIDED, targets=targets, others=others),
        )
        return case.id, case.student_id


@pytest.mark.parametrize(("event", "objection"), _outcomes())
def test_procedure_notice_mail_and_page_agree_on_the_remedy(
    app: Any, engine: Engine, world: Any, event: str, objection: bool
) -> None:
    case_id, student_id = _decide(engine, event)
    settings = settings_for(engine, app.state.runtime.settings.data_dir)

    # The notice and the e-mail instruct on the same remedy.
    with session_factory(engine)() as s:
        seq = s.scalar(
            select(CaseEvent.seq).where(CaseEvent.case_id == case_id, CaseEvent.event == event)
        )
        assert seq is not None
        notice = render_notice_html(
            **notice_inputs(s, case_id, seq, language="en", settings=settings)
        )
        case = s.get(Case, case_id)
        assert case is not None
        ends, home_id = case.appeal_ends_at, case.institution_id
        mail = render(
            event,
            recipient="student",
            language="en",
            context={"case_id": case_id, "state": case.state, "decision": case.decision},
        ).text
    assert ends is not None
    assert ends > NOW
    assert (OBJECTION in notice) is objection
    assert (ACTION in notice) is not objection
    assert ("object to this decision (Widerspruch)" in mail) is objection

    # The student's page offers what the notice says, and the waiver.
    with client(app) as c:
        student_login(c, engine, student_id, NOW)
        page = c.get(f"/cases/{case_id}").text
    assert ('id="form-appeal"' in page) is objection
    assert 'id="form-waive_appeal"' in page

    # The procedure: no one closes the case before the window ends; the student may object
    # (or not), and may waive the remedy, which makes the decision final at once.
    with transaction(session_factory(engine)) as s:
        student = Actor.student(student_id, home_id)
        for closer in (world.net.clerk, Actor.system(Role.TIMER)):
            with pytest.raises(GuardFailed, match="the appeal window is open until"):
                fire(s, case_id, "close", actor=closer, now=NOW)
        attempt = s.begin_nested()
        if objection:
            fire(s, case_id, "appeal", actor=student, now=NOW, data={"message": "The grade"})
            assert s.scalar(select(Case.state).where(Case.id == case_id)) == "appealed"
        else:
            with pytest.raises(GuardFailed, match="a further objection is not available"):
                fire(s, case_id, "appeal", actor=student, now=NOW, data={"message": "Again"})
        attempt.rollback()
        fire(s, case_id, "waive_appeal", actor=student, now=NOW)
        assert s.scalar(select(Case.state).where(Case.id == case_id)) == "closed"


def test_after_the_window_the_case_closes_and_nothing_is_offered(
    app: Any, engine: Engine, world: Any
) -> None:
    case_id, student_id = _decide(engine, "recognize")
    with session_factory(engine)() as s:
        ends = s.scalar(select(Case.appeal_ends_at).where(Case.id == case_id))
    assert ends is not None
    later = ends + dt.timedelta(minutes=1)
    with transaction(session_factory(engine)) as s:
        student = Actor.student(student_id, world.net.home_id)
        with pytest.raises(GuardFailed, match="the appeal window ended at"):
            fire(s, case_id, "appeal", actor=student, now=later, data={"message": "Late"})
    with transaction(session_factory(engine)) as s:
        fire(s, case_id, "close", actor=world.net.clerk, now=later)
        assert s.scalar(select(Case.state).where(Case.id == case_id)) == "closed"
