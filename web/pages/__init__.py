"""The server-rendered pages: sign-in, the office dashboard and case page, the student status
pages. No JavaScript; every change is a form POST carrying the session's CSRF token, answered
with a redirect (post/redirect/get) or, when refused, the page again with the reason.

Offices and students share the routes: ``/cases`` and ``/cases/{id}`` show what the signed-in
person may see, through the same ``case_scope`` as everything else. One router per resource
(sign_in, cases, transcripts, cohorts, account), assembled here; what they share is in
``web.pages.common``.
"""

from __future__ import annotations

from fastapi import APIRouter

from web.pages import account, cases, cohorts, invitation, sign_in, transcripts
from web.pages.common import error_page, install_sign_in_redirect
from web.uploads import GuardedRoute

__all__ = ["error_page", "install_sign_in_redirect", "router"]

router = APIRouter(include_in_schema=False, route_class=GuardedRoute)
for _resource in (sign_in, cases, transcripts, cohorts, account, invitation):
    router.include_router(_resource.router)
