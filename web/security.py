"""Security headers, who the caller is (session cookie or API token), and CSRF checks.

Every response gets a strict Content-Security-Policy (no inline script or style), HSTS,
nosniff, frame-ancestors 'none' and no referrer; everything but the static stylesheet is
``Cache-Control: no-store``, since pages and API answers carry personal data.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from sqlalchemy.orm import Session

from models import Role, WebSession
from workflow import Actor, auth

SESSION_COOKIE = "recog_session"
PRE_CSRF_COOKIE = "recog_precsrf"  # double-submit token for forms without a session (login)
LANG_COOKIE = "recog_lang"
DEVICE_COOKIE = "recog_device"  # a browser that signed in before (workflow.policy.auth)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot read path)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in _HEADERS:
                    if name not in present:
                        headers.append((name, value))
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", CSP.encode()))
                if b"cache-control" not in present:
                    headers.append(
                        (b"cache-control", b"public, max-age=3600" if static else b"no-store")
                    )
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, wrapped)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    actor: Actor
    language: str | None
    name: str
    web_session: WebSession | None = None  # None for API tokens
    session_token: str | None = None
    # The zone the pages show times in: the principal's institution's (set by ``page``).
    zone: ZoneInfo | None = None

    @property
    def is_student(self) -> bool:
        return self.actor.role is Role.STUDENT

    @property
    def key(self) -> str:
        """Who owns idempotency keys: one namespace per user or student."""
        return f"{'student' if self.is_student else 'user'}:{self.actor.id}"


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticate(request: Request, session: Session, now: dt.datetime) -> Principal | None:
    token = bearer(request)
    if token is not None:
        actor = auth.actor_for_api_token(session, token, now=now)
        if actor is None:
            return None
        return Principal(actor=actor, language=None, name=actor.label)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    row = auth.load_session(session, cookie, now=now)
    if row is None:
        return None
    person = auth.signed_in(session, row)
    if person is None:
        return None
    return Principal(
        actor=person.actor,
        language=person.language,
        name=person.name,
        web_session=row,
        session_token=cookie,
    )


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and hmac.compare_digest(str(expected), str(given))


def cookie_args(request: Request) -> dict[str, Any]:
    """Session cookies: HttpOnly, SameSite=Lax, and Secure (browsers keep Secure cookies on
    http://localhost, so development works too)."""
    return {"httponly": True, "secure": True, "samesite": "lax", "path": "/"}
