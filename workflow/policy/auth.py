"""Who is who: password hashes, browser sessions, API tokens, student status links and the
login throttle. Domain logic only: every function takes the caller's session and never
commits; the request (or CLI command) owns the transaction.

Secrets handed to people (session cookies, API tokens, status links) are 256-bit random
strings; the database keeps only their SHA-256, so a copy of the database opens nothing.
Passwords are hashed with argon2id (RFC 9106 parameters of argon2-cffi's default profile).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from models import (
    ApiToken,
    Case,
    LoginThrottle,
    Outbox,
    Role,
    StatusLink,
    Student,
    User,
    WebSession,
    user_programmes,
)
from workflow.cases import fastread
from workflow.errors import Forbidden, NotFound, ValidationFailed
from workflow.policy.actors import Actor, Scope

STATUS_LINK_LIFETIME = dt.timedelta(days=30)
SESSION_IDLE = dt.timedelta(hours=2)
SESSION_ABSOLUTE = dt.timedelta(hours=12)
# Re-sending a status link more often than this queues nothing new (the outbox dedup key
# carries the window), so a button pressed ten times sends one e-mail.
RESEND_WINDOW_SECONDS = 300
MIN_PASSWORD = 12

# Failed logins: the first few are free, then each failure doubles the wait, up to a cap.
# An unknown client is slowed per account and per address; a browser that signed in as the
# user before (its device cookie) has an allowance of its own, which no one else's guesses
# use up: guessing stays slow, and the owner is not locked out (OWASP, "Slow brute force
# attacks: device cookies").
FREE_FAILURES = 3
DEVICE_COOKIE_LIFETIME = dt.timedelta(days=180)
MAX_DELAY_SECONDS = 15 * 60
THROTTLE_FORGET = dt.timedelta(hours=24)

_hasher = PasswordHasher()  # argon2id by default
# Verified when the user does not exist, so both answers take the same time. Made on the
# first sign-in, not at import: hashing costs about 0.15 s, which every `recog` command paid.
_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher.hash("recog-dummy-password-never-valid")
    return _DUMMY_HASH


def new_secret() -> str:
    """256 bits from the OS CSPRNG, URL-safe."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- passwords -------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise ValidationFailed("the password must have at most 1024 characters")
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True if ``password`` matches ``stored``; the same work is done for a missing hash."""
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def authenticate_user(session: Session, username: str, password: str) -> User | None:
    """The active office user with this user name and password, or None."""
    user = session.execute(select(User).where(User.username == username)).scalar()
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        return None
    assert user.password_hash is not None
    if needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def actor_for_user(session: Session, user: User) -> Actor:
    return Actor(
        role=Role(user.role),
        id=user.id,
        institution_id=user.institution_id,
        programme_ids=frozenset(p.id for p in user.programmes),
        label=user.username,
    )


def actor_for_user_id(session: Session, user_id: int) -> Actor | None:
    user = session.get(User, user_id)
    if user is None or not user.active:
        return None
    return actor_for_user(session, user)


def actor_for_username(session: Session, username: str) -> Actor | None:
    """The active office user of this user name as an actor (the CLI's ``--actor NAME``)."""
    user = session.execute(select(User).where(User.username == username)).scalar()
    if user is None or not user.active:
        return None
    return actor_for_user(session, user)


def actor_for_student_id(session: Session, student_id: int) -> Actor | None:
    row = session.execute(
        select(Student.id, Student.institution_id).where(Student.id == student_id)
    ).first()
    if row is None:
        return None
    return Actor.student(row.id, row.institution_id)


def actor_for_case_student(session: Session, case_id: int) -> Actor | None:
    """The student of a case as an actor (the CLI's ``--actor student`` acting on the case,
    through the office); None when there is no such case."""
    row = session.execute(
        select(Case.student_id, Case.institution_id).where(Case.id == case_id)
    ).first()
    if row is None:
        return None
    return Actor.student(row.student_id, row.institution_id)


def remember_language(session: Session, actor: Actor, language: str) -> None:
    """Keep a signed-in person's chosen language for their e-mails and next sign-in."""
    if actor.id is None:
        return
    row = session.get(Student if actor.role == Role.STUDENT else User, actor.id)
    if isinstance(row, Student | User):
        row.preferred_language = language


def authenticate_student(
    session: Session, institution_code: str, matriculation: str, password: str
) -> Student | None:
    """A student's password login, only where their institution enables it."""
    from models import Institution

    row = session.execute(
        select(Student)
        .join(Institution, Institution.id == Student.institution_id)
        .where(
            Institution.code == institution_code,
            Student.matriculation_number == matriculation,
            Institution.student_passwords.is_(True),
        )
    ).scalar()
    ok = verify_password(row.password_hash if row else None, password)
    return row if row is not None and ok else None


# --- browser sessions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str  # the cookie value; only its digest is stored
    csrf: str
    expires_at: dt.datetime


def start_session(
    session: Session, *, now: dt.datetime, user_id: int | None = None, student_id: int | None = None
) -> NewSession:
    if (user_id is None) == (student_id is None):
        raise ValueError("a session belongs to exactly one user or one student")
    token, csrf = new_secret(), new_secret()
    expires = now + SESSION_IDLE
    session.execute(
        insert(WebSession).values(
            token_hash=digest(token),
            user_id=user_id,
            student_id=student_id,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=expires,
        )
    )
    return NewSession(token, csrf, expires)


def load_session(session: Session, token: str, *, now: dt.datetime) -> WebSession | None:
    """The live session behind a cookie value; sliding idle expiry, absolute cap."""
    row = session.get(WebSession, digest(token))
    if row is None or row.expires_at <= now or row.created_at + SESSION_ABSOLUTE <= now:
        return None
    # Touch at most once a minute: a read-mostly page should not write on every request.
    if now - row.last_seen_at > dt.timedelta(minutes=1):
        row.last_seen_at = now
        row.expires_at = min(now + SESSION_IDLE, row.created_at + SESSION_ABSOLUTE)
    return row


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who a live browser session belongs to: the actor, their language and name."""

    actor: Actor
    language: str | None
    name: str


def signed_in(session: Session, row: WebSession) -> SignedIn | None:
    """The person of a live session (``load_session``): an active office user or a student;
    None when the user was deactivated or the person is gone."""
    if row.user_id is not None:
        user = session.get(User, row.user_id)
        if user is None or not user.active:
            return None
        return SignedIn(actor_for_user(session, user), user.preferred_language, user.display_name)
    student = session.get(Student, row.student_id) if row.student_id is not None else None
    if student is None:
        return None
    return SignedIn(
        Actor.student(student.id, student.institution_id),
        student.preferred_language,
        student.name,
    )


def end_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == digest(token)))


def purge_sessions(session: Session, *, now: dt.datetime) -> int:
    result: Any = session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    return int(result.rowcount or 0)


# --- API tokens ------------------------------------------------------------------------------


def create_api_token(
    session: Session,
    *,
    user_id: int,
    name: str,
    now: dt.datetime,
    expires_at: dt.datetime | None = None,
    scope: Scope = Scope.ADMIN,
    parent_id: int | None = None,
) -> tuple[int, str]:
    """A new bearer token for an integration acting as ``user_id``; shown once. The
    interfaces go through ``issue_api_token``, which checks who may make which token."""
    name = name.strip()
    if not name or len(name) > 120:
        raise ValidationFailed("a token needs a name of 1 to 120 characters")
    if expires_at is not None and expires_at <= now:
        raise ValidationFailed("the expiry of a token must lie in the future")
    token = "rcg_" + new_secret()
    token_id = session.execute(
        insert(ApiToken)
        .values(
            user_id=user_id,
            name=name,
            token_hash=digest(token),
            created_at=now,
            expires_at=expires_at,
            scope=Scope(scope).value,
            parent_id=parent_id,
        )
        .returning(ApiToken.id)
    ).scalar_one()
    return token_id, token


def parse_scope(raw: str) -> Scope:
    try:
        return Scope(raw.strip().lower())
    except ValueError:
        raise ValidationFailed(
            f"unknown token scope {raw!r}; use one of {', '.join(s.value for s in Scope)}"
        ) from None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    id: int
    name: str
    scope: Scope
    expires_at: dt.datetime | None
    token: str  # the secret: shown once, never stored


def issue_api_token(
    session: Session,
    *,
    actor: Actor | None,
    user_id: int,
    name: str,
    scope: Scope,
    now: dt.datetime,
    expires_at: dt.datetime | None = None,
) -> IssuedToken:
    """The one way an interface makes an API token (the API for its caller, the CLI for any
    user). A token may make tokens of its own scope or less, which end when it ends (they
    expire no later and are revoked with it); an ``admin`` scope is for admins' tokens. The
    console (``actor`` None) may make any token for any active user."""
    from workflow.policy.permissions import Action, require

    user = session.get(User, user_id)
    if user is None or not user.active:
        raise NotFound(f"there is no active user with id {user_id}")
    if actor is not None:
        require(actor, Action.USE_API_TOKENS)
        if actor.id != user_id:
            raise Forbidden("an API token acts as the user who makes it")
    else:
        require(actor_for_user(session, user), Action.USE_API_TOKENS)
    if scope is Scope.ADMIN and user.role != Role.ADMIN.value:
        raise ValidationFailed(
            f"the scope admin is for an admin's tokens; {user.username} is a {user.role} "
            "(use --scope read or write)"
        )
    parent_id = actor.token_id if actor is not None else None
    if actor is not None and actor.scope is not None:
        if not actor.scope.covers(scope):
            raise Forbidden(
                f"this API token has the scope {actor.scope.value}; it may make tokens of "
                f"that scope or less, not {scope.value}"
            )
        parent_expiry = session.scalar(
            select(ApiToken.expires_at).where(ApiToken.id == actor.token_id)
        )
        if parent_expiry is not None and (expires_at is None or expires_at > parent_expiry):
            expires_at = parent_expiry  # a child never outlives its parent
    token_id, token = create_api_token(
        session,
        user_id=user_id,
        name=name,
        now=now,
        expires_at=expires_at,
        scope=scope,
        parent_id=parent_id,
    )
    return IssuedToken(token_id, name.strip(), scope, expires_at, token)


def token_select() -> Any:
    """The live token with this hash (``:hash``, ``:now``) and its active user."""
    return (
        select(
            ApiToken.id.label("token_id"),
            ApiToken.last_used_at,
            User.id.label("user_id"),
            User.role,
            User.institution_id,
            User.username,
            ApiToken.scope,
        )
        .join(User, User.id == ApiToken.user_id)
        .where(
            ApiToken.token_hash == bindparam("hash"),
            ApiToken.revoked_at.is_(None),
            (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > bindparam("now")),
            User.active.is_(True),
        )
    )


def _programmes_select() -> Any:
    return select(user_programmes.c.programme_id).where(
        user_programmes.c.user_id == bindparam("user_id")
    )


def _touch_update() -> Any:
    return (
        update(ApiToken)
        .where(ApiToken.id == bindparam("token_id"))
        .values(last_used_at=bindparam("now"))
    )


_TOKEN = fastread.Reads(token_select)
_PROGRAMMES = fastread.Reads(_programmes_select)
_TOUCH = fastread.Reads(_touch_update)
TOKEN_TOUCH_EVERY = dt.timedelta(minutes=5)


def token_touch(
    dialect: Any, token_id: int, last_used_at: dt.datetime | None, now: dt.datetime
) -> tuple[fastread.Compiled, dict[str, Any]] | None:
    """The write that records a token's use, when the last record is older than a few
    minutes (so a polling integration does not write on every request); else None."""
    if last_used_at is not None and now - last_used_at <= TOKEN_TOUCH_EVERY:
        return None
    return _TOUCH.get(dialect), {"token_id": token_id, "now": now}


def _token_actor(row: tuple[Any, ...], programmes: frozenset[int]) -> Actor:
    return Actor(
        role=Role(row[3]),
        id=row[2],
        institution_id=row[4],
        programme_ids=programmes,
        label=row[5],
        scope=Scope(row[6]),
        token_id=row[0],
    )


def actor_for_api_token(session: Session, token: str, *, now: dt.datetime) -> Actor | None:
    """The active user behind a live token: one query (two for an examiner, whose scope
    needs their programmes), since integrations call this on every request. The last use
    is recorded at most every few minutes."""
    dialect = session.get_bind().dialect
    rows = fastread.fetch(session, _TOKEN.get(dialect), {"hash": digest(token), "now": now})
    if not rows:
        return None
    row = rows[0]
    touch = token_touch(dialect, row[0], row[1], now)
    if touch is not None:
        fastread.execute(session, *touch)
    programmes: frozenset[int] = frozenset()
    if row[3] == Role.EXAMINER.value:
        programmes = frozenset(
            r[0] for r in fastread.fetch(session, _PROGRAMMES.get(dialect), {"user_id": row[2]})
        )
    return _token_actor(row, programmes)


def list_api_tokens(session: Session, *, user_id: int | None = None) -> list[dict[str, Any]]:
    """The tokens of a user (of every user: None, for the console), never their secret."""
    query = (
        select(
            ApiToken.id,
            ApiToken.name,
            User.username.label("user"),
            ApiToken.scope,
            ApiToken.parent_id,
            ApiToken.created_at,
            ApiToken.expires_at,
            ApiToken.last_used_at,
            ApiToken.revoked_at,
        )
        .join(User, User.id == ApiToken.user_id)
        .order_by(ApiToken.id)
    )
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return [dict(r._mapping) for r in session.execute(query)]


def _descendants(session: Session, token_id: int) -> set[int]:
    """``token_id`` and every token made from it, however deep."""
    found, frontier = {token_id}, {token_id}
    while frontier:
        frontier = (
            set(session.scalars(select(ApiToken.id).where(ApiToken.parent_id.in_(frontier))))
            - found
        )
        found |= frontier
    return found


def revoke_api_token(
    session: Session, token_id: int, *, actor: Actor | None, now: dt.datetime
) -> int:
    """Revoke a token and every token made from it (its children, theirs, ...); returns how
    many were still live. A user revokes their own tokens, an admin also those of their
    institution's users, the console any; a token itself only itself and what it made, so a
    leaked token cannot revoke its owner's other tokens."""
    from workflow.policy.permissions import Action, allowed, require

    row = session.execute(
        select(ApiToken.id, ApiToken.user_id, User.institution_id)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.id == token_id)
    ).first()
    missing = NotFound(f"API token {token_id} not found")
    if row is None:
        raise missing
    if actor is not None:
        require(actor, Action.USE_API_TOKENS)
        own = row.user_id == actor.id
        admin = allowed(actor, Action.MANAGE_USERS) and row.institution_id == actor.institution_id
        if not own and not admin:
            raise missing
        if actor.token_id is not None and token_id not in _descendants(session, actor.token_id):
            raise Forbidden(
                f"an API token may revoke itself and the tokens it made, not token {token_id}"
            )
    ids = _descendants(session, token_id)
    result: Any = session.execute(
        update(ApiToken)
        .where(ApiToken.id.in_(ids), ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount or 0)


def revoke_user_access(session: Session, user_id: int, *, now: dt.datetime) -> None:
    """End every browser session of a user and revoke all their tokens (a user disabled)."""
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


# --- status links ----------------------------------------------------------------------------


def mint_status_link(
    session: Session,
    student_id: int,
    *,
    now: dt.datetime,
    lifetime: dt.timedelta = STATUS_LINK_LIFETIME,
) -> str:
    """A new secret status link token for a student; only its digest is stored."""
    token = new_secret()
    session.execute(
        insert(StatusLink).values(
            student_id=student_id,
            token_hash=digest(token),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


def redeem_status_link(session: Session, token: str, *, now: dt.datetime) -> int | None:
    """The student a valid (unexpired, unrevoked) status link belongs to, or None."""
    if not token or len(token) > 200:
        return None
    return session.execute(
        select(StatusLink.student_id).where(
            StatusLink.token_hash == digest(token),
            StatusLink.revoked_at.is_(None),
            StatusLink.expires_at > now,
        )
    ).scalar()


def revoke_status_links(session: Session, student_id: int, *, now: dt.datetime) -> int:
    """Revoke every live link of a student (and end their link sessions)."""
    result: Any = session.execute(
        update(StatusLink)
        .where(StatusLink.student_id == student_id, StatusLink.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.execute(delete(WebSession).where(WebSession.student_id == student_id))
    return int(result.rowcount or 0)


def queue_status_link(
    session: Session, case_id: int, *, link_base: str | None, now: dt.datetime
) -> bool:
    """Queue the ``status_link`` e-mail to the student of a case; False if one was queued
    within the last few minutes. ``link_base`` is the configured public address
    (``Settings.link_base``): without one there is no link to send, and that is refused.
    The row holds ids only, never a token nor an address: the relay mints a fresh link at
    delivery, on the configured address (``status_link_for_delivery``; ADR 0002)."""
    student_id = session.execute(select(Case.student_id).where(Case.id == case_id)).scalar()
    if student_id is None:
        raise NotFound(f"case {case_id} not found")
    if not link_base:
        raise ValidationFailed(
            "no status link can be sent: RECOG_PUBLIC_URL is not set (the address students "
            "open Recog at; e-mailed links are built from it only)"
        )
    window = int(now.timestamp()) // RESEND_WINDOW_SECONDS
    key = f"status_link:{student_id}:{window}"
    if session.execute(select(Outbox.id).where(Outbox.dedup_key == key)).first():
        return False
    queue_email(
        session,
        dedup_key=key,
        case_id=case_id,
        recipient="student",
        template="status_link",
        payload={"case_id": case_id, "student_id": student_id},
        now=now,
    )
    return True


def queue_email(
    session: Session,
    *,
    dedup_key: str,
    case_id: int | None,
    recipient: str,
    template: str,
    payload: dict[str, Any],
    now: dt.datetime,
) -> None:
    """Queue an e-mail that no case event sends (a status link, an office user's invitation)
    in the outbox, due now, in the caller's transaction; the commit wakes the relay."""
    session.execute(
        insert(Outbox).values(
            dedup_key=dedup_key,
            case_id=case_id,
            event_seq=None,
            channel="email",
            recipient=recipient,
            template=template,
            payload=payload,
            status="pending",
            attempts=0,
            available_at=now,
            created_at=now,
        )
    )
    session.info["recog_outbox_written"] = True


def status_link_for_delivery(
    session: Session, student_id: int, *, link_base: str | None, now: dt.datetime
) -> str | None:
    """For the relay: mint the link a ``status_link`` (or any student) e-mail carries, at
    the moment it is composed, on the configured public address (``Settings.link_base``)
    and nothing else: not a request's Host header, not an address stored with the row
    (rows queued before this rule carry one; it is ignored). None without an address."""
    base = (link_base or "").rstrip("/")
    if not base.startswith(("https://", "http://")):
        return None
    return f"{base}/s/{mint_status_link(session, student_id, now=now)}"


# --- login throttle (database backend) -----------------------------------------------------


def delay_after(failures: int) -> int:
    """Seconds a key must wait after ``failures`` consecutive failures."""
    if failures < FREE_FAILURES:
        return 0
    return int(min(MAX_DELAY_SECONDS, 2 ** (failures - FREE_FAILURES)))


def _lock_row(session: Session, key: str, now: dt.datetime) -> Any:
    """Create the key's row if needed and lock it until the transaction ends (PostgreSQL:
    the upsert's row lock; SQLite: the transaction already holds the write lock)."""
    values = {"key": key, "failures": 0, "last_failure_at": now, "blocked_until": now}
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
    stmt = upsert(LoginThrottle).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[LoginThrottle.key], set_={"key": stmt.excluded.key}
    )
    return session.execute(
        stmt.returning(
            LoginThrottle.failures, LoginThrottle.last_failure_at, LoginThrottle.blocked_until
        )
    ).one()


def throttle_attempt(session: Session, keys: list[str], *, now: dt.datetime) -> float:
    """Register a login attempt before the password is checked. Returns the seconds to wait
    (nothing counted) if any key is still slowed down; otherwise counts the attempt as a
    failure, which ``throttle_success`` forgets if the password is right. Counting first,
    under a row lock, means parallel guesses cannot all slip through one open window."""
    rows = {key: _lock_row(session, key, now) for key in sorted(keys)}
    wait = max(float((row.blocked_until - now).total_seconds()) for row in rows.values())
    if wait > 0:
        return wait
    for key, row in rows.items():
        failures = 1 if now - row.last_failure_at > THROTTLE_FORGET else row.failures + 1
        session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == key)
            .values(
                failures=failures,
                last_failure_at=now,
                blocked_until=now + dt.timedelta(seconds=delay_after(failures)),
            )
        )
    return 0.0


def throttle_success(session: Session, keys: list[str]) -> None:
    session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(keys)))


def _account(username: str) -> str:
    return digest(username.strip().lower())[:40]


def throttle_keys(username: str, client: str, device: str | None = None) -> list[str]:
    """The keys one sign-in attempt counts on: a trusted device's own key (``device``, from
    ``trusted_device``) alone; else per account and per client. Hashed, so the table holds
    no user names or addresses."""
    if device is not None:
        return [device]
    return ["account:" + _account(username), "client:" + digest(client)[:40]]


def _device_mac(key: bytes, username: str, body: str) -> str:
    message = f"recog-device|{_account(username)}|{body}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def device_cookie(key: bytes, username: str, *, now: dt.datetime) -> str:
    """The value of a device cookie for a browser that just signed in as ``username``: a
    random id and an expiry, signed with ``key`` and bound to that user name (the name
    itself is not in it)."""
    expires = int((now + DEVICE_COOKIE_LIFETIME).timestamp())
    body = f"{secrets.token_urlsafe(16)}.{expires}"
    return f"{body}.{_device_mac(key, username, body)}"


def trusted_device(
    key: bytes, cookie: str | None, username: str, *, now: dt.datetime
) -> str | None:
    """The throttle key of the device behind ``cookie`` if the cookie is genuine, unexpired
    and was issued for this user name; else None (the client counts as unknown)."""
    if not cookie or len(cookie) > 200:
        return None
    body, _dot, mac = cookie.rpartition(".")
    nonce, _dot, expires = body.partition(".")
    if not nonce or not expires.isdigit():
        return None
    if not hmac.compare_digest(mac, _device_mac(key, username, body)):
        return None
    if int(expires) <= now.timestamp():
        return None
    return "device:" + digest(nonce)[:40]
