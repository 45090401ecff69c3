"""RefreshChains: each session's refresh tokens, spent once, in the store every instance shares.

A session's refresh tokens form one chain. The store keeps one hash per chain,
`{prefix}:refresh:{session_id}`: `next`, the id of the one token that may be used next, and
`owner`, a digest of the identity that created the session ("" when it had none). It lives
REFRESH_CHAIN_MAX_SECONDS from the session's creation and is never extended. A refresh is one
Lua script, atomic whichever instance runs it:

- a caller other than the owner: refused, and the chain left alone, so that someone else's
  copy of a token can neither use it nor revoke it (RefreshTokenForeign);
- the current token: spent, the new one is current (`rotate` returns);
- a spent token: someone replays it (a stolen copy, or a client that lost the race), so the
  whole chain is revoked, the newest token included (RefreshTokenReused);
- no chain: it outlived REFRESH_CHAIN_MAX_SECONDS, or the store lost it (RefreshChainExpired).

Two instances refreshing with one token at the same moment: one script runs first and rotates;
the other sees a spent token, and revokes the chain.
"""

import hashlib

from ..auth import Identity
from .backend import Effect, StoreBackend, StoreOutcomeUnknown, StoreUnavailable
from .tokens import TokenError

REVOKED = "revoked"

# KEYS: the chain; ARGV: first token id, lifetime ms, owner
_START = """
redis.call('HSET', KEYS[1], 'next', ARGV[1], 'owner', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: the chain; ARGV: presented token id, new token id, the revoked mark, caller
# -> {"rotated", ms the chain has left} | {"foreign" | "reused" | "expired", 0}
_ROTATE = """
local chain = redis.call('HMGET', KEYS[1], 'next', 'owner')
if not chain[1] then
  return {'expired', 0}
end
if chain[2] ~= '' and chain[2] ~= ARGV[4] then
  return {'foreign', 0}
end
if chain[1] ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'next', ARGV[3])
  return {'reused', 0}
end
redis.call('HSET', KEYS[1], 'next', ARGV[2])
return {'rotated', redis.call('PTTL', KEYS[1])}
"""


def owner_of(identity: Identity | None) -> str:
    """What a chain records of its creator: a digest, so the store holds no user id."""
    if identity is None:
        return ""
    return hashlib.sha256(identity.subject.encode()).hexdigest()[:32]


class RefreshTokenReused(TokenError):
    code = "refresh_token_reused"

    def __init__(self, session_id: str) -> None:
        super().__init__(
            "This refresh token was already used, so every refresh token of the session is "
            "revoked; start a new session.",
            session_id=session_id,
        )


class RefreshTokenForeign(TokenError):
    code = "refresh_token_foreign"

    def __init__(self, session_id: str) -> None:
        super().__init__(
            "This session was created by another caller; only its creator may refresh it.",
            session_id=session_id,
        )


class RefreshChainExpired(TokenError):
    code = "refresh_chain_expired"

    def __init__(self, session_id: str) -> None:
        super().__init__(
            "The session can no longer be refreshed (its refresh chain reached its maximum "
            "lifetime); start a new session.",
            session_id=session_id,
        )


class RefreshChains:
    def __init__(self, backend: StoreBackend, *, prefix: str, max_seconds: int) -> None:
        self.backend = backend
        self.prefix = prefix
        self.max_seconds = max_seconds

    def key(self, session_id: str) -> str:
        return f"{self.prefix}:refresh:{session_id}"

    async def start(self, session_id: str, token_id: str, owner: Identity | None) -> None:
        """A new session's chain, with `token_id` its only usable token; only `owner` may use
        it, or anyone when the session was created without an identity."""
        try:
            await self.backend.run(
                _START,
                [self.key(session_id)],
                [token_id, str(self.max_seconds * 1000), owner_of(owner)],
                # Run twice, it sets the same value: safe to retry on a lost connection.
                effect=Effect.GUARDED_WRITE,
            )
        except StoreOutcomeUnknown as error:
            # Nothing the client could use was made: the session id was never handed out.
            raise StoreUnavailable(f"the refresh chain could not be started: {error}") from error

    async def rotate(self, session_id: str, spent: str, fresh: str, caller: Identity | None) -> int:
        """Spend token `spent` and make `fresh` the current one; the seconds the chain has
        left. RefreshTokenForeign, RefreshTokenReused or RefreshChainExpired when `caller` may
        not use `spent`."""
        # Never retried: a second run would find `spent` already spent, and revoke the chain.
        outcome, left_ms = await self.backend.run(
            _ROTATE,
            [self.key(session_id)],
            [spent, fresh, REVOKED, owner_of(caller)],
            effect=Effect.WRITE,
        )
        if outcome == "foreign":
            raise RefreshTokenForeign(session_id)
        if outcome == "reused":
            raise RefreshTokenReused(session_id)
        if outcome != "rotated":
            raise RefreshChainExpired(session_id)
        return max(0, int(left_ms) // 1000)
