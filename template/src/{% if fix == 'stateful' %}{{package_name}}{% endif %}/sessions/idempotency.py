"""IdempotentInputs: a message posted with an `Idempotency-Key` is handled once, whichever
instance each retry reaches.

The first request claims the key in the store (one hash per key, next to the session's other
keys, see keys.py) with a fingerprint of what it asks. The owner checks the claim before it asks
the upstream, and records the answer in the claim in the same step as the turns (store.py), so
an answer is kept if and only if its turns are. A retry finds the answer, or waits for it while
the first request is in flight; a key sent with another message is refused.

A claim that nobody answers (its owner died with the input, its poster gave up) lapses after a
while; an input whose claim lapsed or was released is never recorded, so a later retry that
claims the key again cannot record a second turn.
"""

import asyncio
import hashlib
import time
from dataclasses import dataclass

import orjson

from ..errors import ClientError
from .backend import Effect, StoreBackend
from .keys import KeyLayout
from .keyspace import SessionDeleted, adopt_legacy_keys
from .store import SessionNotFound

# Letters, digits and `_.:-`, 1 to 64 of them: what a UUID, a ULID or a client's own scheme
# needs, and short enough to sit in a key name.
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
# How often a retry looks again while the first request is in flight.
POLL_SECONDS = 0.1

# Claim the key for a request, unless it is claimed already; the session must exist.
# KEYS: the session, the claim. ARGV: fingerprint, request id, pending ms
# -> {'deleted'} | {'missing'} | {'claimed'} | {'reused'} | {'pending'} | {'done', answer}
_CLAIM = """
if redis.call('HEXISTS', KEYS[1], 'deleted') == 1 then return {'deleted'} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local claim = redis.call('HMGET', KEYS[2], 'state', 'fingerprint', 'answer', 'request')
if not claim[1] then
  redis.call('HSET', KEYS[2], 'state', 'pending', 'fingerprint', ARGV[1], 'request', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return {'claimed'}
end
if claim[2] ~= ARGV[1] then return {'reused'} end
-- Run again after a lost reply, the claim is found to be this request's own.
if claim[1] == 'pending' and claim[4] == ARGV[2] then return {'claimed'} end
return {claim[1], claim[3]}
"""

# Give the key up, only while it is still this request's and unanswered.
# KEYS: the claim. ARGV: request id -> 1 released, 0 not ours or answered
_RELEASE = """
local claim = redis.call('HMGET', KEYS[1], 'state', 'request')
if claim[1] == 'pending' and claim[2] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: the claim. ARGV: request id -> 1 while this request's claim waits for its answer
_HOLDS = """
local claim = redis.call('HMGET', KEYS[1], 'state', 'request')
if claim[1] == 'pending' and claim[2] == ARGV[1] then return 1 end
return 0
"""


class IdempotencyKeyInvalid(ClientError):
    code = "idempotency_key_invalid"

    def __init__(self) -> None:
        super().__init__(
            "Idempotency-Key must be 1 to 64 letters, digits or `_.:-` characters; send a new "
            "one (a UUID will do) with each message, and the same one with its retries."
        )


class IdempotencyKeyReused(ClientError):
    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was sent with another message to this session; a key "
            "names one message. Nothing was sent or recorded."
        )


class IdempotencyInProgress(ClientError):
    code = "idempotency_in_progress"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"The message sent with Idempotency-Key {key!r} is still being answered; retry "
            "with the same key after Retry-After to get its answer."
        )


@dataclass(frozen=True)
class Answer:
    """What the owner recorded for a message: the fields of its HTTP answer."""

    heard: str
    reply: str
    rev: int

    def to_json(self) -> str:
        return orjson.dumps({"heard": self.heard, "reply": self.reply, "rev": self.rev}).decode()

    @classmethod
    def from_json(cls, text: str) -> "Answer":
        fields = orjson.loads(text)
        return cls(heard=fields["heard"], reply=fields["reply"], rev=fields["rev"])


def fingerprint(item: dict[str, str]) -> str:
    """What a message asks, in 64 characters: a retry must ask exactly the same."""
    return hashlib.sha256(orjson.dumps(item, option=orjson.OPT_SORT_KEYS)).hexdigest()


class IdempotentInputs:
    def __init__(self, backend: StoreBackend, keys: KeyLayout) -> None:
        self.backend = backend
        self.keys = keys

    async def claim(
        self,
        session_id: str,
        key: str,
        *,
        fingerprint: str,
        request_id: str,
        pending_seconds: float,
        wait_seconds: float,
    ) -> Answer | None:
        """Claim `key` for `request_id` (None: this request now sends the message), or the
        answer the first request with this key got, waiting up to `wait_seconds` for it.

        Raises SessionNotFound, SessionDeleted, IdempotencyKeyReused, or IdempotencyInProgress
        when the first request is still in flight after `wait_seconds`.
        """
        deadline = time.monotonic() + wait_seconds
        keys = [self.keys.session(session_id), self.keys.idempotency(session_id, key)]
        args = [fingerprint, request_id, str(int(pending_seconds * 1000))]
        while True:
            # Only a claim changes anything, and a second run finds it claimed: guarded.
            reply = await self.backend.run(_CLAIM, keys, args, effect=Effect.GUARDED_WRITE)
            outcome = reply[0]
            if outcome == "deleted":
                raise SessionDeleted(session_id)
            if outcome == "missing":
                if await adopt_legacy_keys(self.backend, self.keys, session_id):
                    continue
                raise SessionNotFound(session_id)
            if outcome == "reused":
                raise IdempotencyKeyReused(key)
            if outcome == "claimed":
                return None
            if outcome == "done":
                return Answer.from_json(reply[1])
            if time.monotonic() >= deadline:
                raise IdempotencyInProgress(key)
            # The first request is in flight: its answer, or its release, comes soon.
            await asyncio.sleep(POLL_SECONDS)

    async def release(self, session_id: str, key: str, request_id: str) -> None:
        """The message was not recorded: a retry with `key` may send it again."""
        await self.backend.run(
            _RELEASE,
            [self.keys.idempotency(session_id, key)],
            [request_id],
            effect=Effect.GUARDED_WRITE,
        )

    async def holds(self, session_id: str, key: str, request_id: str) -> bool:
        """Whether `request_id` still holds `key`, unanswered: only then is it worth asking."""
        held = await self.backend.run(
            _HOLDS, [self.keys.idempotency(session_id, key)], [request_id], effect=Effect.READ
        )
        return bool(held)
