"""The login throttle, shared by every server process: Redis when the installation uses Redis
(its broker URL), otherwise the database (``workflow.policy.auth``). Both count an attempt
before the password is checked and forget the count when it is right."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from sqlalchemy.orm import Session

from config.settings import Settings
from workflow import auth


class Throttle(Protocol):
    def attempt(self, session: Session, keys: list[str], now: dt.datetime) -> float: ...

    def success(self, session: Session, keys: list[str]) -> None: ...


class DbThrottle:
    def attempt(self, session: Session, keys: list[str], now: dt.datetime) -> float:
        return auth.throttle_attempt(session, keys, now=now)

    def success(self, session: Session, keys: list[str]) -> None:
        auth.throttle_success(session, keys)


# KEYS: the throttle keys. ARGV: now (s), free failures, cap (s), forget (s).
# Returns the seconds to wait (0: counted, go ahead). Atomic: Redis runs a script alone.
_ATTEMPT = """
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local blocked = tonumber(redis.call('HGET', key, 'blocked') or '0')
  if blocked > now then return tostring(blocked - now) end
end
for i, key in ipairs(KEYS) do
  local n = redis.call('HINCRBY', key, 'failures', 1)
  local delay = 0
  if n >= tonumber(ARGV[2]) then
    delay = math.min(tonumber(ARGV[3]), 2 ^ (n - tonumber(ARGV[2])))
  end
  redis.call('HSET', key, 'blocked', tostring(now + delay))
  redis.call('EXPIRE', key, tonumber(ARGV[4]))
end
return '0'
"""


class RedisThrottle:
    def __init__(self, url: str) -> None:
        import redis

        self.client: Any = redis.Redis.from_url(url, socket_timeout=2)
        self.script: Any = self.client.register_script(_ATTEMPT)

    def attempt(self, session: Session, keys: list[str], now: dt.datetime) -> float:
        wait = self.script(
            keys=[f"recog:throttle:{k}" for k in keys],
            args=[
                now.timestamp(),
                auth.FREE_FAILURES,
                auth.MAX_DELAY_SECONDS,
                int(auth.THROTTLE_FORGET.total_seconds()),
            ],
        )
        return float(wait)

    def success(self, session: Session, keys: list[str]) -> None:
        self.client.delete(*[f"recog:throttle:{k}" for k in keys])


def make_throttle(settings: Settings) -> Throttle:
    url = settings.broker_url or ""
    if url.startswith(("redis://", "rediss://")):
        return RedisThrottle(url)
    return DbThrottle()
