"""What every router of the API shares: the unit of work of a request (``call``:
authentication, CSRF for cookie sessions, the permission check), ``If-Match`` versions,
``Idempotency-Key`` replays and the problem responses every route may answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import IdempotencyKey
from web.problems import PROBLEM, Problem, unauthorized
from web.runtime import Runtime, runtime
from web.security import Principal, authenticate, csrf_ok
from workflow import Action, ValidationFailed, require

PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {PROBLEM: {"schema": {"type": "object"}}}}
    for code, text in [
        (401, "Not signed in"),
        (403, "Forbidden"),
        (404, "Not found"),
        (409, "Conflict"),
        (412, "Stale version"),
        (413, "Too large"),
        (415, "Unsupported media type"),
        (422, "Unprocessable"),
        (429, "Too many requests"),
    ]
}


@contextmanager
def call(
    request: Request, *, action: Action | None = None, write: bool = False
) -> Iterator[tuple[Session, Principal, Runtime]]:
    """Authenticate, check (cookie sessions) the CSRF header and, for a route that is not a
    workflow use case checking for itself, the permission table's ``action``, inside the
    request's one transaction."""
    rt = runtime(request)
    with rt.unit_of_work() if write else rt.read_only() as session:
        principal = authenticate(request, session, rt.now())
        if principal is None:
            raise unauthorized()
        if (
            write
            and principal.web_session is not None
            and not csrf_ok(principal.web_session.csrf_token, request.headers.get("x-csrf-token"))
        ):
            raise Problem(
                403, "Forbidden", "the X-CSRF-Token header is missing or wrong", code="csrf"
            )
        if action is not None:
            require(principal.actor, action)
        yield session, principal, rt


def case_version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit() or len(raw) > 9:
        # Matches no version the case can have: the precondition fails (RFC 9110 13.1.1).
        raise Problem(
            412,
            "Precondition Failed",
            "If-Match must be the case version you "
            'saw, e.g. "7" (the ETag of GET /api/v1/cases/ID)',
            code="if_match",
        )
    return int(raw)


def idempotent(
    request: Request,
    session: Session,
    principal: Principal,
    body: Any,
    run: Callable[[], tuple[int, Any]],
    headers: dict[str, str] | None = None,
) -> Response:
    """Run ``run`` once per ``Idempotency-Key``: the same key with the same body replays the
    stored response; with another body it is refused. The key row is written first, so a
    concurrent duplicate waits for the first to commit and then replays it."""
    key = request.headers.get("idempotency-key")
    if key is None:
        status, payload = run()
        return JSONResponse(jsonable_encoder(payload), status_code=status, headers=headers)
    if not 1 <= len(key) <= 200:
        raise ValidationFailed("the Idempotency-Key must have 1 to 200 characters")
    canonical = json.dumps(
        [request.method, request.url.path, jsonable_encoder(body)], sort_keys=True, default=str
    )
    request_hash = hashlib.sha256(canonical.encode()).hexdigest()
    ident = (principal.key, key)
    row = session.get(IdempotencyKey, ident)
    if row is None:
        try:
            with session.begin_nested():
                session.add(
                    IdempotencyKey(
                        principal=principal.key,
                        key=key,
                        method=request.method,
                        path=request.url.path,
                        request_hash=request_hash,
                        status_code=0,
                        response_body="",
                        created_at=runtime(request).now(),
                    )
                )
        except IntegrityError:
            row = session.get(IdempotencyKey, ident, populate_existing=True)
    if row is not None:
        if row.request_hash != request_hash:
            raise ValidationFailed(
                "this Idempotency-Key was used for a different request; "
                "use a new key for a new request"
            )
        if row.status_code == 0:
            raise Problem(
                409,
                "Conflict",
                "a request with this Idempotency-Key is still running; retry in a moment",
                code="idempotency_in_progress",
            )
        return Response(
            row.response_body,
            status_code=row.status_code,
            media_type="application/json",
            headers={**(headers or {}), "Idempotent-Replayed": "true"},
        )
    status, payload = run()
    encoded = json.dumps(jsonable_encoder(payload), ensure_ascii=False)
    stored = session.get(IdempotencyKey, ident)
    assert stored is not None
    stored.status_code, stored.response_body = status, encoded
    return Response(encoded, status_code=status, media_type="application/json", headers=headers)


def fired_out(f: Any) -> dict[str, Any]:
    return {
        "case_id": f.case_id,
        "seq": f.seq,
        "event": f.event,
        "from_state": f.from_state,
        "to_state": f.to_state,
        "at": f.at,
        "due_at": f.due_at,
        "due_kind": f.due_kind,
        "version": f.seq,
    }
