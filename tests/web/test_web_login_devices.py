"""The login throttle slows guessing down without locking the owner out (OWASP's device
cookies): a browser that signed in as a user before carries a signed cookie bound to that
user name and has an allowance of its own; unknown clients are slowed per account and per
address. Guesses from ever-changing addresses therefore stay slow, and the owner still signs
in from their own browser, from wherever it is."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from conftest import NOW
from fastapi.testclient import TestClient
from web_harness import CSRF, PASSWORD

from web.security import DEVICE_COOKIE, PRE_CSRF_COOKIE
from workflow.policy import auth


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock(app: Any) -> Clock:
    c = Clock()
    app.state.runtime.clock = c
    return c


def sign_in(app: Any, address: str, username: str, password: str, device: str | None = None) -> Any:
    """One sign-in from ``address`` by a fresh browser (with a device cookie, if given)."""
    with TestClient(
        app, base_url="https://testserver", follow_redirects=False, client=(address, 50000)
    ) as c:
        form = c.get("/login")
        token = CSRF.search(form.text)
        assert token
        cookies = {PRE_CSRF_COOKIE: c.cookies[PRE_CSRF_COOKIE]}
        if device is not None:
            cookies[DEVICE_COOKIE] = device
        c.cookies.clear()
        return c.post(
            "/login",
            data={"username": username, "password": password, "csrf": token.group(1)},
            headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())},
        )


def device_of(response: Any) -> str:
    assert response.status_code == 303, response.text
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == DEVICE_COOKIE:
            return rest.split(";")[0]
    raise AssertionError("no device cookie was set")


def test_the_device_cookie_is_signed_httponly_secure_and_sent_to_the_login_only(
    app: Any, world: Any, clock: Clock
) -> None:
    ok = sign_in(app, "10.0.0.1", world.users["clerk"], PASSWORD)
    header = next(h for h in ok.headers.get_list("set-cookie") if h.startswith(f"{DEVICE_COOKIE}="))
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"httponly", "secure", "max-age", "path", "samesite"} <= attributes
    assert "Path=/login" in header
    assert world.users["clerk"] not in header  # bound to the user name, which it does not carry
    key = app.state.runtime.settings.signing_key()
    value = device_of(ok)
    assert auth.trusted_device(key, value, world.users["clerk"], now=NOW) is not None
    assert auth.trusted_device(key, value, world.users["clerk"].upper(), now=NOW) is not None
    assert auth.trusted_device(key, value, world.users["examiner"], now=NOW) is None
    assert auth.trusted_device(b"another key", value, world.users["clerk"], now=NOW) is None
    later = NOW + auth.DEVICE_COOKIE_LIFETIME + dt.timedelta(seconds=1)
    assert auth.trusted_device(key, value, world.users["clerk"], now=later) is None
    body, _, mac = value.rpartition(".")
    nonce, _, expires = body.partition(".")
    longer = f"{nonce}.{int(expires) + 86400 * 365}.{mac}"  # a later expiry, same signature
    assert auth.trusted_device(key, longer, world.users["clerk"], now=NOW) is None


def test_guesses_from_changing_addresses_do_not_lock_the_owner_out(
    app: Any, world: Any, clock: Clock
) -> None:
    clerk = world.users["clerk"]
    device = device_of(sign_in(app, "10.0.0.1", clerk, PASSWORD))  # the owner, last week
    # Eight wrong passwords from eight addresses: the first three are checked, then the
    # account is slowed down for every unknown client (the 429 "lock-out").
    codes = [
        sign_in(app, f"203.0.113.{i}", clerk, "wrong password").status_code for i in range(1, 9)
    ]
    assert codes == [401, 401, 401, 429, 429, 429, 429, 429]
    # The owner's own browser, now at another address, signs in at once ...
    assert device_of(sign_in(app, "198.51.100.7", clerk, PASSWORD, device=device))
    # ... while an unknown client still waits, even with the right password.
    unknown = sign_in(app, "198.51.100.8", clerk, PASSWORD)
    assert unknown.status_code == 429
    assert int(unknown.headers["retry-after"]) >= 1


def test_distributed_guessing_stays_slow(app: Any, world: Any, clock: Clock) -> None:
    """An attacker with a new address for every guess, guessing as soon as the throttle
    lets them, for one hour: the password is checked a handful of times, not thousands."""
    clerk = world.users["clerk"]
    device = device_of(sign_in(app, "10.0.0.1", clerk, PASSWORD))
    end = NOW + dt.timedelta(hours=1)
    checked = refused = 0
    address = 0
    while clock.now < end:
        address += 1
        source = f"10.{address // 65536}.{address // 256 % 256}.{address % 256}"
        r = sign_in(app, source, clerk, "x")
        if r.status_code == 401:
            checked += 1
        else:
            assert r.status_code == 429
            refused += 1
            clock.now += dt.timedelta(seconds=int(r.headers["retry-after"]))
    # 3 free, then waits of 1, 2, 4 ... 512 s (10 guesses in 17 min), then one per 15 min.
    assert 13 <= checked <= 17
    assert refused >= checked - 3
    # And through all of it the owner's browser still gets in.
    assert device_of(sign_in(app, "10.0.0.1", clerk, PASSWORD, device=device))


def test_a_device_cookie_helps_only_its_own_user_and_only_unaltered(
    app: Any, world: Any, clock: Clock
) -> None:
    clerk, examiner = world.users["clerk"], world.users["examiner"]
    owner = device_of(sign_in(app, "10.0.0.1", clerk, PASSWORD))
    # The attacker signs in to an account of their own and so holds a genuine cookie.
    own = device_of(sign_in(app, "203.0.113.50", examiner, PASSWORD))
    for i in range(1, 5):
        sign_in(app, f"203.0.113.{i}", clerk, "wrong password")
    assert sign_in(app, "203.0.113.9", clerk, PASSWORD, device=own).status_code == 429
    forged = owner[:-1] + ("0" if owner[-1] != "0" else "1")
    assert sign_in(app, "203.0.113.9", clerk, PASSWORD, device=forged).status_code == 429
    assert sign_in(app, "203.0.113.9", clerk, PASSWORD, device="x.y.z").status_code == 429
    assert sign_in(app, "10.0.0.2", clerk, PASSWORD, device=owner).status_code == 303


def test_a_known_browser_has_its_own_slowdown(app: Any, world: Any, clock: Clock) -> None:
    """Wrong passwords from a known browser (a stolen cookie, say) are slowed down on that
    browser's allowance and do not touch the account's: the owner elsewhere is not slowed."""
    clerk = world.users["clerk"]
    device = device_of(sign_in(app, "10.0.0.1", clerk, PASSWORD))
    codes = [
        sign_in(app, "10.0.0.1", clerk, "wrong password", device=device).status_code
        for _ in range(5)
    ]
    assert codes == [401, 401, 401, 429, 429]
    assert sign_in(app, "10.0.0.1", clerk, PASSWORD, device=device).status_code == 429
    assert sign_in(app, "192.0.2.1", clerk, PASSWORD).status_code == 303
