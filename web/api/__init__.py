"""The REST API under ``/api/v1``: one router per resource (auth, catalog, students, cases,
documents, users, transcripts, cohorts, grading), assembled here under the prefix and with the
problem responses every route may answer. Authentication by ``Authorization: Bearer`` (API
tokens) or the session cookie (then unsafe methods need the ``X-CSRF-Token`` header). Every
case read goes through ``workflow.cases.queries`` and thus ``case_scope``; every change through
``workflow``. What the routers share is in ``web.api.common`` and ``web.api.schemas``.
"""

from __future__ import annotations

from fastapi import APIRouter

from web.api import auth, cases, catalog, cohorts, documents, grading, students, transcripts, users
from web.api.common import PROBLEMS
from web.uploads import GuardedRoute

router = APIRouter(prefix="/api/v1", responses=PROBLEMS, route_class=GuardedRoute)
for _resource in (auth, catalog, students, cases, documents, users, transcripts, cohorts, grading):
    router.include_router(_resource.router)
