"""Fixtures of the web tests: the app on a migrated SQLite or PostgreSQL database (the
``engine`` fixture of tests/conftest.py), a seeded world, signed-in clients, and Chromium."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

# tests/tasks has a ``harness`` module too; load ours under its own name.
_spec = importlib.util.spec_from_file_location(
    "web_harness", Path(__file__).with_name("harness.py")
)
assert _spec is not None
assert _spec.loader is not None
web_harness = importlib.util.module_from_spec(_spec)
sys.modules["web_harness"] = web_harness
_spec.loader.exec_module(web_harness)

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def world(engine: Engine, data_dir: Path) -> Any:
    return web_harness.build_world(engine, data_dir, NOW)


@pytest.fixture
def app(engine: Engine, data_dir: Path, world: Any) -> Any:
    from web.app import create_app

    application = create_app(web_harness.settings_for(engine, data_dir))
    application.state.runtime.clock = lambda: NOW
    yield application
    application.state.runtime.engine.dispose()


@pytest.fixture
def anon(app: Any) -> Any:
    with web_harness.client(app) as c:
        yield c


@pytest.fixture
def clerk(app: Any, world: Any) -> Any:
    with web_harness.client(app) as c:
        c.csrf = web_harness.login(c, world.users["clerk"])
        yield c


@pytest.fixture
def clerk_api(app: Any, engine: Engine, world: Any) -> Any:
    """A client with the clerk's API token (no cookies, no CSRF)."""
    token = web_harness.api_token(engine, world.users["clerk"], NOW)
    with web_harness.client(app) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


# --- Redis (the login throttle's shared backend) ---------------------------------------------

# The machine's Redis, in a database number of its own; tests use keys of their own and delete
# only those.
REDIS_URL = os.environ.get("RECOG_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def services_required() -> bool:
    return (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("RECOG_REQUIRE_SERVICES") == "1"
    )


@pytest.fixture
def redis_url() -> str:
    """The Redis URL, after a ping: skipped when Redis is absent, failed where services are
    required (CI=true or RECOG_REQUIRE_SERVICES=1)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        if services_required():
            pytest.fail(f"Redis is required (CI) but unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


# --- Chromium for pytest-playwright ------------------------------------------------------------


def chromium_or_skip() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is required under CI (apt install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (apt install chromium)")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with small parameters inside the test process (0.2 s a hash otherwise);
    the servers the brute-force test starts keep the production parameters."""
    from argon2 import PasswordHasher

    from workflow.policy import auth

    monkeypatch.setattr(
        auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    monkeypatch.setattr(auth, "_DUMMY_HASH", auth._hasher.hash("dummy"))


@pytest.fixture
def cli_in_process(
    engine: Engine, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """The ``recog`` CLI (its Typer app) in this process, on the world's database at the
    tests' moment: a function of the arguments (and ``input=``, its standard input) that
    returns Typer's ``Result``."""
    from typer.testing import CliRunner

    import cli.context as ctx
    from cli.main import app

    settings = web_harness.settings_for(engine, data_dir)
    monkeypatch.setattr(ctx, "engine", lambda: engine)
    monkeypatch.setattr(ctx, "require_schema", lambda: True)
    monkeypatch.setattr(ctx, "settings", lambda: settings)
    monkeypatch.setattr(ctx, "now", lambda: NOW)
    runner = CliRunner()
    return lambda *args, input=None: runner.invoke(app, list(args), input=input)
