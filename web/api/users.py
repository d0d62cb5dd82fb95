"""Office accounts: ``/users``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from models import User
from web.api.common import call, idempotent
from web.api.schemas import Invited, UserIn, UserOut
from web.uploads import GuardedRoute
from workflow import Action, accounts, catalog, queries

router = APIRouter(route_class=GuardedRoute)


def _user_out(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "username": u.username,
        "display_name": u.display_name,
        "role": u.role,
        "active": u.active,
        "programmes": sorted(g.code for g in u.programmes),
    }


@router.get("/users", response_model=list[UserOut], tags=["users"])
def users(request: Request) -> list[dict[str, Any]]:
    """The office users of your institution."""
    with call(request) as (s, p, _rt):
        return [_user_out(u) for u in queries.office_users(s, actor=p.actor)]


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"])
def create_user(request: Request, body: UserIn) -> Response:
    """Add an office user to your institution (admins only)."""
    with call(request, action=Action.ADD_USER, write=True) as (s, p, _rt):
        inst = queries.own_institution(s, actor=p.actor)
        assert inst is not None  # ADD_USER is for office roles, of an institution

        def run() -> tuple[int, Any]:
            user = catalog.add_user(
                s,
                username=body.username,
                role=body.role,
                institution=inst.code,
                display_name=body.display_name,
                email=body.email,
                programmes=body.programmes,
                language=body.language,
            )
            if body.password:
                catalog.set_user_password(s, user.username, body.password)
            return 201, _user_out(user)

        return idempotent(request, s, p, body.model_dump(), run)


@router.post("/users/{username}/disable", response_model=UserOut, tags=["users"])
def disable_user(request: Request, username: str) -> dict[str, Any]:
    """Disable a user of your institution (admins only): their sessions end, their tokens
    and invitations are revoked."""
    with call(request, action=Action.MANAGE_USERS, write=True) as (s, p, rt):
        return _user_out(accounts.disable_user(s, username, actor=p.actor, now=rt.now()))


@router.post("/users/{username}/invite", response_model=Invited, status_code=202, tags=["users"])
def invite_user(request: Request, username: str) -> dict[str, Any]:
    """E-mail a user of your institution a one-time link to set their password (admins
    only); the link is built from RECOG_PUBLIC_URL and expires after RECOG_INVITATION_DAYS."""
    with call(request, action=Action.MANAGE_USERS, write=True) as (s, p, rt):
        expires = accounts.invite_user(
            s,
            username,
            actor=p.actor,
            now=rt.now(),
            public_url=rt.settings.link_base,
            lifetime=dt.timedelta(days=rt.settings.invitation_days),
        )
        return {"username": username, "expires_at": expires}
