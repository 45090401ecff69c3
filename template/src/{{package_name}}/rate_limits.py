"""Rate limits shared by every instance: counted in the store, so N instances allow what one would.

Each limit is a GCRA bucket (the generic cell rate algorithm): one key per scope and client that
holds the time at which the client's bucket is empty again. "30/minute" admits a burst of 30,
then one request every 2 seconds; an instance that restarts forgets nothing, since it keeps
nothing. All the limits of one request are checked and counted in one Lua script, one round
trip: a request refused by one limit counts against none.

The client is the caller's identity (auth.py) when there is one, else its IP address as the ASGI
server reports it. Behind a proxy or a load balancer that is the proxy's address, so every
client would share one bucket: run uvicorn with `--proxy-headers --forwarded-allow-ips=<the
proxy's address>` (or `'*'` when only the proxy can reach the app), so it reports the address
the proxy saw (X-Forwarded-For).

A store that cannot count is a 503 store_unavailable: a limit never silently stops applying.
"""

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from pydantic import BeforeValidator
from pydantic_settings import NoDecode

from .auth import IdentityDep
from .errors import ClientError
from .sessions.backend import Effect, StoreBackend, StoreOutcomeUnknown, StoreUnavailable

# KEYS: one bucket per limit; ARGV: each limit's emission interval and period, in ms.
# -> {0, 0} when admitted (every bucket counted), else {the refused limit's index, ms to wait}.
# The store's clock, so instances whose clocks disagree still share one count.
_ADMIT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local wait, refused = 0, 0
local next_empty = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local empty_at = math.max(tonumber(redis.call('GET', key) or 0), now)
  next_empty[i] = empty_at + interval
  local over = next_empty[i] - now - period
  if over > wait then
    wait, refused = over, i
  end
end
if refused > 0 then
  return {refused, wait}
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, next_empty[i], 'PX', next_empty[i] - now)
end
return {0, 0}
"""

# Seconds in each unit a rate may be written in ("minute", "minutes", "m"...).
# One Redis Cluster hash tag for every bucket, so that the buckets of one request share a slot
# and one script can count them all.
HASH_TAG = "{rate}"
_UNITS = (
    *(("s", 1), ("second", 1), ("m", 60), ("minute", 60)),
    *(("h", 3_600), ("hour", 3_600), ("d", 86_400), ("day", 86_400)),
)
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?\s*$")


@dataclass(frozen=True)
class Rate:
    """At most `count` requests per `period_seconds`, as a burst or spread out."""

    count: int
    period_seconds: int

    @classmethod
    def parse(cls, text: str) -> "Rate":
        """ "30/minute", "5/second", "1000/day", "3/10s", "100/5m"."""
        match = _RATE.match(text.lower())
        unit = dict(_UNITS).get(match[3]) if match else None
        if not match or not unit or int(match[1]) < 1 or match[2] == "0":
            raise ValueError(
                f"{text!r} is not a rate: write <count>/<period>, e.g. 30/minute or 5/10s"
            )
        return cls(int(match[1]), int(match[2] or 1) * unit)

    def __str__(self) -> str:
        return f"{self.count} per {self.period_seconds} s"


def _as_rate(value: object) -> object:
    return Rate.parse(value) if isinstance(value, str) else value


# A setting that holds a Rate, written in the environment as "30/minute".
RateSetting = Annotated[Rate, NoDecode, BeforeValidator(_as_rate)]


@dataclass(frozen=True)
class Limit:
    """A rate under a name (`scope`), counted per client, or for all clients together."""

    scope: str
    rate: Rate
    per_client: bool = True


class RateLimited(ClientError):
    code = "rate_limited"

    def __init__(self, limit: Limit, retry_after: int) -> None:
        whose = "per client" if limit.per_client else "for all clients together"
        super().__init__(
            f"Too many requests: {limit.scope} allows {limit.rate} {whose}. Try again in "
            f"{retry_after} s.",
            limit=limit.scope,
            retry_after=retry_after,
        )
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimiter:
    """Counts requests against limits in the store every instance shares."""

    def __init__(self, backend: StoreBackend, *, prefix: str) -> None:
        self.backend = backend
        self.prefix = prefix

    def key(self, limit: Limit, client: str) -> str:
        whose = client if limit.per_client else "*"
        return f"{self.prefix}:{HASH_TAG}:{limit.scope}:{whose}"

    async def admit(self, client: str, limits: Sequence[Limit]) -> None:
        """Count one request from `client` against every limit, or against none and raise
        RateLimited (with the seconds until it would be admitted) when any is over."""
        keys = [self.key(limit, client) for limit in limits]
        args = []
        for limit in limits:
            period_ms = limit.rate.period_seconds * 1000
            # At least 1 ms apart: the store counts in milliseconds (a key's PX must be > 0).
            interval_ms = max(1, period_ms // limit.rate.count)
            args += [str(interval_ms), str(period_ms)]
        try:
            refused, wait_ms = await self.backend.run(
                _ADMIT, keys, args, effect=Effect.GUARDED_WRITE
            )
        except StoreOutcomeUnknown as error:
            # The request itself was not handled, whatever the store counted.
            raise StoreUnavailable(f"the rate limit could not be counted: {error}") from error
        if refused:
            raise RateLimited(limits[int(refused) - 1], max(1, math.ceil(int(wait_ms) / 1000)))


async def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


async def client_of(request: Request, identity: IdentityDep) -> str:
    """Whom a request counts against: its identity, else its address."""
    if identity is not None:
        # Hashed: a bucket's key names no user, and is short whatever the identity is.
        return "user:" + _digest(identity.subject)
    host = request.client.host if request.client else "unknown"
    # An address is at most 45 characters; anything longer came from a header, and is hashed
    # so that it cannot make a key of any length.
    return f"ip:{host}" if len(host) <= 45 else f"ip:{_digest(host)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
ClientDep = Annotated[str, Depends(client_of)]


def session_creation(rate: Rate) -> Limit:
    return Limit("session_create", rate)


async def limit_session_creation(
    request: Request, limiter: RateLimiterDep, client: ClientDep
) -> None:
    """SESSION_CREATE_RATE, for `POST /api/sessions`."""
    rate: Rate = request.app.state.settings.session_create_rate
    await limiter.admit(client, [session_creation(rate)])


# For a route's `dependencies=[...]`: the route is refused (429) past SESSION_CREATE_RATE.
SessionCreationLimit = Depends(limit_session_creation)
