"""Who am I, and API tokens: ``/me``, ``/tokens``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from web.api.common import call
from web.api.schemas import Me, NewToken, TokenIn, TokenOut
from web.params import Id
from web.uploads import GuardedRoute
from workflow import Action, Scope, auth

router = APIRouter(route_class=GuardedRoute)


@router.get("/me", response_model=Me, tags=["auth"])
def me(request: Request) -> dict[str, Any]:
    with call(request) as (_, p, _rt):
        return {
            "role": p.actor.role.value,
            "id": p.actor.id,
            "institution_id": p.actor.institution_id,
            "name": p.name,
            "language": p.language,
        }


@router.get("/tokens", response_model=list[TokenOut], tags=["auth"])
def tokens(request: Request) -> Any:
    """Your API tokens (never their secret)."""
    with call(request, action=Action.USE_API_TOKENS) as (s, p, _):
        assert p.actor.id is not None
        return auth.list_api_tokens(s, user_id=p.actor.id)


@router.post("/tokens", response_model=NewToken, status_code=201, tags=["auth"])
def create_token(request: Request, body: TokenIn) -> Response:
    """Create an API token acting as you, of the scope asked for (a token may create tokens
    of its own scope or less, revoked with it); its secret is shown only in this response."""
    with call(request, action=Action.USE_API_TOKENS, write=True) as (s, p, rt):
        assert p.actor.id is not None
        now = rt.now()
        expires = now + dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None
        made = auth.issue_api_token(
            s,
            actor=p.actor,
            user_id=p.actor.id,
            name=body.name,
            scope=Scope(body.scope),
            now=now,
            expires_at=expires,
        )
        # Never stored for replay: a token's secret must not rest in the database.
        return JSONResponse(
            jsonable_encoder(
                {
                    "id": made.id,
                    "name": made.name,
                    "scope": made.scope.value,
                    "expires_at": made.expires_at,
                    "token": made.token,
                }
            ),
            status_code=201,
        )


@router.delete("/tokens/{token_id}", status_code=204, tags=["auth"], response_class=Response)
def revoke_token(request: Request, token_id: Id) -> Response:
    """Revoke a token and every token made from it."""
    with call(request, action=Action.USE_API_TOKENS, write=True) as (s, p, rt):
        auth.revoke_api_token(s, token_id, actor=p.actor, now=rt.now())
        return Response(status_code=204)
