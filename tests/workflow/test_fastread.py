"""Compiled hot reads (``workflow.cases.fastread``): the case status and the API-token lookup run
as SQL compiled once, with ``case_scope`` built for a symbolic actor. They must answer exactly
as the ORM query with the real actor's ``case_scope`` does, for every kind of actor, on both
engines, and convert values as SQLAlchemy does."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import ApiToken, Case, Role, User
from tests.factories import CaseFactory, OfferingFactory, Office, bound, musterstadt, student_actor
from workflow.cases import fastread, queries
from workflow.errors import NotFound
from workflow.policy import auth
from workflow.policy.actors import Actor, Scope, case_scope

NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)


def _cases(session: Session, net: Office) -> list[int]:
    specs = [
        ("submitted", "past"),
        ("in_review", "past"),
        ("enrolled", "current"),
        ("recognized", "past"),
    ]
    return [
        CaseFactory(
            state=target,
            offering=OfferingFactory(**{term: True}, today=NOW.date()),
            student__matriculation_number=f"F{i}",
            student__name=f"Student {i}",
            student__email=f"f{i}@example.org",
        ).id
        for i, (target, term) in enumerate(specs)
    ]


def _actors(session: Session, net: Office, case_ids: list[int]) -> list[Actor]:
    examiner = net.examiner
    return [
        net.clerk,
        net.admin,
        net.board,
        examiner,
        Actor(role=Role.EXAMINER, id=examiner.id, institution_id=examiner.institution_id),
        Actor(
            role=Role.EXAMINER,
            id=examiner.id,
            institution_id=examiner.institution_id,
            programme_ids=frozenset({*examiner.programme_ids, 9999}),
        ),
        Actor(role=Role.EXAMINER, id=123456, institution_id=examiner.institution_id),
        Actor(role=Role.CLERK, id=net.clerk.id, institution_id=987654),
        Actor(role=Role.CLERK, id=net.clerk.id, institution_id=None),
        Actor.system(Role.IMPORT),
        Actor.system(Role.TIMER, net.home_id),
        Actor.system(Role.TIMER, 987654),
        student_actor(session, case_ids[0]),
        student_actor(session, case_ids[1]),
        Actor(role=Role.STUDENT, id=None),
    ]


def test_case_status_matches_the_orm_scope_for_every_actor(
    session: Session,
    network: Office,
) -> None:
    case_ids = _cases(session, network)
    probe = [*case_ids, 999_999]
    checked = 0
    for actor in [None, *_actors(session, network, case_ids)]:
        for case_id in probe:
            query = select(
                Case.id,
                Case.state,
                Case.version,
                Case.due_at,
                Case.due_kind,
                Case.appeal_ends_at,
                Case.updated_at,
            ).where(Case.id == case_id)
            if actor is not None:
                query = query.where(case_scope(actor))
            expected = session.execute(query).first()
            if expected is None:
                with pytest.raises(NotFound, match=f"case {case_id} not found"):
                    queries.case_status(session, case_id, actor=actor, now=NOW)
                continue
            got = queries.case_status(session, case_id, actor=actor, now=NOW)
            assert (
                got["id"],
                got["state"],
                got["version"],
                got["due_at"],
                got["due_kind"],
                got["appeal_ends_at"],
                got["updated_at"],
            ) == tuple(expected)
            assert got["updated_at"].tzinfo is dt.UTC  # converted as UTCDateTime does
            checked += 1
    assert checked >= 20  # both answers occur: visible and hidden cases


def test_api_token_actor_matches_the_user(session: Session, network: Office) -> None:
    token_id, token = auth.create_api_token(
        session, user_id=network.examiner.id or 0, name="t", now=NOW, scope=Scope.WRITE
    )
    actor = auth.actor_for_api_token(session, token, now=NOW)
    assert actor == Actor(
        role=Role.EXAMINER,
        id=network.examiner.id,
        institution_id=network.examiner.institution_id,
        programme_ids=network.examiner.programme_ids,
        label=network.examiner_username,
        scope=Scope.WRITE,
        token_id=token_id,
    )
    last_used = session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id))
    assert last_used == NOW
    # Used again a minute later: the last use is not rewritten on every request.
    auth.actor_for_api_token(session, token, now=NOW + dt.timedelta(minutes=1))
    assert session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id)) == NOW
    assert auth.actor_for_api_token(session, token + "x", now=NOW) is None
    session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id)
        .values(expires_at=NOW + dt.timedelta(hours=1))
    )
    assert auth.actor_for_api_token(session, token, now=NOW + dt.timedelta(hours=2)) is None
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(expires_at=None))
    session.execute(update(User).where(User.id == network.examiner.id).values(active=False))
    assert auth.actor_for_api_token(session, token, now=NOW) is None


def _token_users(session: Session, net: Office) -> list[int]:
    """Every kind of token holder: each office role, an examiner of a programme without
    cases, and a clerk of another institution."""
    from models import Programme
    from workflow.office.catalog import add_institution, add_user

    session.add(Programme(institution_id=net.home_id, code="EMPTY-BSC", title="Empty"))
    session.flush()
    add_user(
        session,
        username="bare-examiner",
        role="examiner",
        institution=_home_code(session, net),
        programmes=["EMPTY-BSC"],
        email="bare@uni.example",
    )
    add_institution(
        session, code="other-home.example", name="Other Home", country="DE", kind="home"
    )
    add_user(
        session,
        username="other-clerk",
        role="clerk",
        institution="other-home.example",
        email="oc@other.example",
    )
    ids = [a.id for a in (net.clerk, net.examiner, net.board, net.admin)]
    ids += list(
        session.scalars(select(User.id).where(User.username.in_(["bare-examiner", "other-clerk"])))
    )
    return [i for i in ids if i is not None]


def _home_code(session: Session, net: Office) -> str:
    from models import Institution

    code = session.scalar(select(Institution.code).where(Institution.id == net.home_id))
    assert code is not None
    return code


def _two_step(session: Session, token: str, case_id: int) -> Any:
    actor = auth.actor_for_api_token(session, token, now=NOW)
    if actor is None:
        return "unauthorized"
    try:
        return queries.case_status(session, case_id, actor=actor, now=NOW)
    except NotFound:
        return "not found"


def _one_step(found: queries.TokenStatus | None) -> Any:
    if found is None:
        return "unauthorized"
    return "not found" if found.status is None else found.status


def test_token_and_status_in_one_statement_match_the_two_steps(
    session: Session, network: Office
) -> None:
    case_ids = [*_cases(session, network), 999_999]
    tokens = [
        auth.create_api_token(session, user_id=uid, name="t", now=NOW)[1]
        for uid in _token_users(session, network)
    ]
    revoked_id, revoked = auth.create_api_token(
        session, user_id=network.clerk.id or 0, name="r", now=NOW
    )
    auth.revoke_api_token(session, revoked_id, actor=None, now=NOW)
    answers = []
    for token in [*tokens, revoked, "rcg_unknown"]:
        for case_id in case_ids:
            one = _one_step(queries.case_status_for_token(session, token, case_id, now=NOW))
            assert one == _two_step(session, token, case_id), (token, case_id)
            answers.append(one if isinstance(one, str) else "status")
    assert {"unauthorized", "not found", "status"} <= set(answers)


@pytest.mark.postgres
def test_async_poll_answers_as_the_sync_one(pg_engine: Any) -> None:
    """The asyncio path of the API (psycopg's AsyncConnection) uses the same statement, and
    records the token's use."""
    import psycopg

    from models.db import session_factory

    with session_factory(pg_engine)() as s, s.begin(), bound(s):
        net = musterstadt()
        case_ids = [*_cases(s, net), 999_999]
        tokens = [
            auth.create_api_token(s, user_id=uid, name="a", now=NOW)[1]
            for uid in _token_users(s, net)
        ]
    url = pg_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    dialect = pg_engine.dialect

    async def run() -> list[Any]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return [
                _one_step(
                    await queries.case_status_for_token_async(
                        conn, dialect, token, case_id, now=NOW
                    )
                )
                for token in [*tokens, "rcg_unknown"]
                for case_id in case_ids
            ]

    # A fresh event loop in a thread of its own: an earlier test may have left one running
    # in this thread (Playwright's sync API does).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        got = pool.submit(lambda: asyncio.run(run())).result()
    with session_factory(pg_engine)() as s, s.begin():
        expected = [
            _two_step(s, token, case_id)
            for token in [*tokens, "rcg_unknown"]
            for case_id in case_ids
        ]
        assert set(s.scalars(select(ApiToken.last_used_at))) == {NOW}
    assert got == expected
    assert any(isinstance(x, dict) for x in got)
    assert "not found" in got


def test_literals_in_a_compiled_statement_keep_their_values(
    session: Session, network: Office
) -> None:
    compiled = fastread.compile_statement(
        select(Case.id).where(Case.id == 1), session.get_bind().dialect
    )
    assert compiled.params({}) in ({"id_1": 1}, (1,))
