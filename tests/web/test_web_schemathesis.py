"""schemathesis over the OpenAPI schema: no 5xx, every response matches the schema (status
code, content type, body). Bounded: a few examples per operation, on SQLite."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from web_harness import api_token, build_world, settings_for

from models.db import make_engine

TOKEN: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from conftest import NOW

    from web.app import create_app

    root = tmp_path_factory.mktemp("schemathesis")
    shutil.copy(sqlite_template, root / "recog.sqlite3")
    engine = make_engine(f"sqlite:///{root / 'recog.sqlite3'}")
    build_world(engine, root / "var", NOW, states=("planned", "in_review", "rejected"))
    TOKEN["admin"] = api_token(engine, "admin", NOW)
    app = create_app(settings_for(engine, root / "var"))
    app.state.runtime.clock = lambda: NOW
    yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    app.state.runtime.engine.dispose()
    engine.dispose()


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.mark.slow
def test_api_conforms_to_its_schema(api_schema: Any) -> None:
    # One hypothesis run per operation (schemathesis' pytest plugin does not support
    # pytest 9's items yet, so the operations are walked here).
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {TOKEN['admin']}"}, checks=CHECKS
            )

        run()
