"""Office accounts: listing and disabling users, and the e-mailed one-time invitation with
which a new user sets their own password. Every interface (CLI, API, pages) calls these; each
takes the caller's session and never commits.

An invitation is written to the outbox in the transaction that makes it, like every other
notification, so it is never lost. The row holds the user's id, the site's public address and
the expiry, never a secret: the relay mints the link when it composes the e-mail
(``invitation_for_delivery``; only its SHA-256 is stored), as it does for status links. A
redelivered e-mail thus carries a second link to the same invitation; setting the password
through any of them uses up all of the user's open invitations.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, selectinload

from models import Institution, User, UserInvitation
from workflow.errors import Forbidden, NotFound, ValidationFailed
from workflow.policy.actors import Actor
from workflow.policy.auth import (
    digest,
    hash_password,
    new_secret,
    queue_email,
    revoke_user_access,
)
from workflow.policy.permissions import Action, require

INVITATION_TEMPLATE = "invitation"


def find_user(session: Session, username: str, actor: Actor | None) -> User:
    """The user of this name, if the actor's institution holds them (anyone's: the console)."""
    user = session.execute(select(User).where(User.username == username)).scalar()
    if user is None or (actor is not None and user.institution_id != actor.institution_id):
        raise NotFound(f"there is no user {username!r}")
    return user


def list_users(session: Session, *, actor: Actor | None) -> list[dict[str, Any]]:
    """The office users (of the actor's institution; all of them for the console)."""
    require(actor, Action.SEE_USERS)
    query = (
        select(User, Institution.code)
        .join(Institution, Institution.id == User.institution_id)
        .options(selectinload(User.programmes))
        .order_by(User.username)
    )
    if actor is not None:
        query = query.where(User.institution_id == actor.institution_id)
    return [
        {
            "id": user.id,
            "username": user.username,
            "display_name": user.display_name,
            "role": user.role,
            "institution": code,
            "email": user.email,
            "active": user.active,
            "has_password": user.password_hash is not None,
            "programmes": sorted(p.code for p in user.programmes),
        }
        for user, code in session.execute(query)
    ]


def disable_user(session: Session, username: str, *, actor: Actor | None, now: dt.datetime) -> User:
    """Disable an office user: they can no longer sign in, their browser sessions end, their
    API tokens and open invitations are revoked. Their cases and audit entries stay."""
    require(actor, Action.MANAGE_USERS)
    user = find_user(session, username, actor)
    if actor is not None and actor.id == user.id:
        raise ValidationFailed("you cannot disable yourself; ask another admin")
    if not user.active:
        raise ValidationFailed(f"user {username!r} is disabled already")
    user.active = False
    revoke_user_access(session, user.id, now=now)
    session.execute(
        update(UserInvitation)
        .where(UserInvitation.user_id == user.id, UserInvitation.used_at.is_(None))
        .values(used_at=now)
    )
    return user


def set_password(session: Session, username: str, password: str, *, actor: Actor | None) -> User:
    """Set an office user's password (argon2id); their browser sessions end."""
    from workflow.office.catalog import set_user_password

    require(actor, Action.MANAGE_USERS)
    user = find_user(session, username, actor)
    if not user.active:
        raise ValidationFailed(f"user {username!r} is disabled; a password would open nothing")
    return set_user_password(session, username, password)


def invite_user(
    session: Session,
    username: str,
    *,
    actor: Actor | None,
    now: dt.datetime,
    public_url: str | None,
    lifetime: dt.timedelta,
) -> dt.datetime:
    """Queue an e-mail with a one-time link by which the user sets their password; returns
    when the link expires. Refused, with nothing queued, for a disabled user, a user without
    an e-mail address, or without Recog's public address (``RECOG_PUBLIC_URL``), from which
    alone links are built."""
    require(actor, Action.MANAGE_USERS)
    user = find_user(session, username, actor)
    if not user.active:
        raise ValidationFailed(f"user {username!r} is disabled; enable them before inviting")
    if not user.email:
        raise ValidationFailed(
            f"user {username!r} has no e-mail address to send the invitation to; "
            f"set a password instead: recog user set-password {username}"
        )
    base = (public_url or "").rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise ValidationFailed(
            "an invitation link needs Recog's public address: set RECOG_PUBLIC_URL "
            "(e.g. https://recog.uni-x.de)"
        )
    expires = now + lifetime
    queue_email(
        session,
        dedup_key=f"invitation:{user.id}:{now.isoformat()}",
        case_id=None,
        recipient=user.role,
        template=INVITATION_TEMPLATE,
        # Ids and the expiry only: the link is built from RECOG_PUBLIC_URL when the e-mail
        # is written (as status links are), never from anything a request carried.
        payload={"user_id": user.id, "expires_at": expires.isoformat()},
        now=now,
    )
    return expires


@dataclass(frozen=True, slots=True)
class InvitationMail:
    """What the relay needs to write an invitation: the addressee, the link and its expiry."""

    email: str | None
    name: str
    username: str
    language: str
    office_name: str
    office_email: str | None
    url: str
    expires_at: dt.datetime
    timezone: str | None


def invitation_for_delivery(
    session: Session, payload: dict[str, Any], *, now: dt.datetime, public_url: str | None
) -> InvitationMail:
    """For the relay: mint the link an invitation e-mail carries, at the moment it is
    composed, with the expiry fixed when the invitation was made, on Recog's configured
    public address (``RECOG_PUBLIC_URL``; an address stored in an older row is ignored)."""
    base = (public_url or "").rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise ValidationFailed(
            "an invitation link needs Recog's public address: set RECOG_PUBLIC_URL"
        )
    user = session.get(User, payload.get("user_id"))
    if user is None:
        raise NotFound(f"the invited user {payload.get('user_id')} no longer exists")
    home = session.get(Institution, user.institution_id)
    assert home is not None
    expires = dt.datetime.fromisoformat(str(payload["expires_at"]))
    token = new_secret()
    session.execute(
        insert(UserInvitation).values(
            user_id=user.id, token_hash=digest(token), created_at=now, expires_at=expires
        )
    )
    return InvitationMail(
        email=user.email,
        name=user.display_name,
        username=user.username,
        language=user.preferred_language,
        office_name=home.name,
        office_email=home.office_email,
        url=f"{base}/invite/{token}",
        expires_at=expires,
        timezone=home.timezone,
    )


class InvitationState(StrEnum):
    OPEN = "open"
    UNKNOWN = "unknown"  # no such link (or its user was disabled)
    USED = "used"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Invitation:
    state: InvitationState
    user_id: int | None = None
    username: str | None = None
    language: str | None = None


def look_up_invitation(session: Session, token: str, *, now: dt.datetime) -> Invitation:
    """What an invitation link stands for: open (with its user), used, expired or unknown."""
    if not token or len(token) > 200:
        return Invitation(InvitationState.UNKNOWN)
    row = session.execute(
        select(UserInvitation, User)
        .join(User, User.id == UserInvitation.user_id)
        .where(UserInvitation.token_hash == digest(token))
    ).first()
    if row is None or not row.User.active:
        return Invitation(InvitationState.UNKNOWN)
    user = row.User
    if row.UserInvitation.used_at is not None:
        state = InvitationState.USED
    elif row.UserInvitation.expires_at <= now:
        state = InvitationState.EXPIRED
    else:
        state = InvitationState.OPEN
    return Invitation(state, user.id, user.username, user.preferred_language)


class InvitationClosed(Forbidden):
    """The invitation link cannot be used (any more); ``state`` says why."""

    def __init__(self, state: InvitationState) -> None:
        self.state = state
        super().__init__(
            {
                InvitationState.USED: "this invitation has been used already; sign in, or ask "
                "the office for a new one",
                InvitationState.EXPIRED: "this invitation has expired; ask the office for a "
                "new one",
            }.get(state, "this invitation link is not valid")
        )


def accept_invitation(session: Session, token: str, password: str, *, now: dt.datetime) -> User:
    """Set the invited user's password through an open invitation, and use up every open
    invitation of theirs. Refused (``InvitationClosed``) when used, expired or unknown; a
    password too short or too long is refused (``ValidationFailed``) and uses nothing."""
    found = look_up_invitation(session, token, now=now)
    if found.state is not InvitationState.OPEN:
        raise InvitationClosed(found.state)
    from workflow.office.catalog import set_user_password

    assert found.username is not None
    hash_password(password)  # checks the rules before anything is used up
    claimed: Any = session.execute(
        update(UserInvitation)
        .where(UserInvitation.token_hash == digest(token), UserInvitation.used_at.is_(None))
        .values(used_at=now)
    )
    if not claimed.rowcount:  # another request used it between the look-up and now
        raise InvitationClosed(InvitationState.USED)
    session.execute(
        update(UserInvitation)
        .where(UserInvitation.user_id == found.user_id, UserInvitation.used_at.is_(None))
        .values(used_at=now)
    )
    return set_user_password(session, found.username, password)
