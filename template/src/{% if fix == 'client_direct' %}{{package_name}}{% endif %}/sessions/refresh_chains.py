"""RefreshChains: each session's refresh tokens, spent once, in the store every instance shares.

A session's refresh tokens form one chain. The store keeps one key per chain,
`{prefix}:refresh:{session_id}`, holding the id of the one token that may be used next; it lives
REFRESH_CHAIN_MAX_SECONDS from the session's creation and is never extended. A refresh swaps
the presented id for the new token's id, atomically, in one Lua script:

- the current token: spent, the new one is current (`rotate` returns);
- a spent token: someone replays it (a stolen copy, or a client that lost the race), so the
  whole chain is revoked, the newest token included (RefreshTokenReused);
- no chain: it outlived REFRESH_CHAIN_MAX_SECONDS, or the store lost it (RefreshChainExpired).

Two instances refreshing with one token at the same moment: one script runs first and rotates;
the other sees a spent token, and revokes the chain.
"""

from .backend import Effect, StoreBackend
from .tokens import TokenError

REVOKED = "revoked"

# KEYS: the chain; ARGV: first token id, lifetime ms
_START = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: the chain; ARGV: presented token id, new token id, the revoked mark
# -> {"rotated", ms the chain has left} | {"reused", 0} | {"expired", 0}
_ROTATE = """
local current = redis.call('GET', KEYS[1])
if not current then
  return {'expired', 0}
end
if current ~= ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
  return {'reused', 0}
end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return {'rotated', redis.call('PTTL', KEYS[1])}
"""


class RefreshTokenReused(TokenError):
    code = "refresh_token_reused"

    def __init__(self, session_id: str) -> None:
        super().__init__(
            "This refresh token was already used, so every refresh token of the session is "
            "revoked; start a new session.",
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

    async def start(self, session_id: str, token_id: str) -> None:
        """A new session's chain, with `token_id` its only usable token."""
        await self.backend.run(
            _START,
            [self.key(session_id)],
            [token_id, str(self.max_seconds * 1000)],
            # Run twice, it sets the same value: safe to retry on a lost connection.
            effect=Effect.GUARDED_WRITE,
        )

    async def rotate(self, session_id: str, spent: str, fresh: str) -> int:
        """Spend token `spent` and make `fresh` the current one; the seconds the chain has
        left. RefreshTokenReused or RefreshChainExpired when `spent` may not be used."""
        # Never retried: a second run would find `spent` already spent, and revoke the chain.
        outcome, left_ms = await self.backend.run(
            _ROTATE, [self.key(session_id)], [spent, fresh, REVOKED], effect=Effect.WRITE
        )
        if outcome == "reused":
            raise RefreshTokenReused(session_id)
        if outcome != "rotated":
            raise RefreshChainExpired(session_id)
        return max(0, int(left_ms) // 1000)
