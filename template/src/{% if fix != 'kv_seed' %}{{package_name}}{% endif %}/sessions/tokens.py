"""TokenCodec: short-lived tokens scoped to one session and one audience.

A token is `payload.signature`: the payload is compact JSON `{"sid", "aud", "exp"}` in base64url
(plus `"jti"`, the token's own id, for tokens the store keeps track of),
the signature itsdangerous's HMAC-SHA256 over it. It proves that this API issued the token, for
that session and that audience, until `exp`; it carries no secret, so a browser may hold it.
Keys rotate as a list: the first signs, every key verifies.
"""

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature, Signer

from ..errors import ClientError

# Bounds the work an attacker can make us do with one header or one connect attempt.
MAX_TOKEN_CHARS = 1_024
# Who a token is for: the realtime upstream (to connect) or this API (to refresh).
REFRESH_AUDIENCE = "session-refresh"


class TokenError(ClientError):
    """A token that must not be used; each subclass has its own code."""

    code = "token_invalid"


class TokenInvalid(TokenError):
    """Not signed by any of our keys, tampered with, truncated or malformed."""


class TokenExpired(TokenError):
    code = "token_expired"


class TokenForeign(TokenError):
    """Authentic, but issued for another audience or another session."""

    code = "token_foreign"


@dataclass(frozen=True)
class Claims:
    session_id: str
    audience: str
    expires_at: int
    # Set on tokens whose use the store records (refresh tokens, spent once); else "".
    token_id: str = ""


class TokenCodec:
    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a TokenCodec needs at least one key")
        # itsdangerous signs with the last key it is given; SESSION_KEYS lists the newest first.
        self._signer = Signer(
            list(reversed(keys)),
            salt="session-token v1",
            key_derivation="hmac",
            digest_method=hashlib.sha256,
        )

    def mint(
        self, session_id: str, audience: str, ttl_seconds: int, token_id: str = ""
    ) -> tuple[str, Claims]:
        claims = Claims(session_id, audience, int(time.time()) + ttl_seconds, token_id)
        payload: dict[str, str | int] = {
            "sid": session_id,
            "aud": audience,
            "exp": claims.expires_at,
        }
        if token_id:
            payload["jti"] = token_id
        text = json.dumps(payload, separators=(",", ":")).encode()
        token = self._signer.sign(base64.urlsafe_b64encode(text).rstrip(b"="))
        return token.decode("ascii"), claims

    def verify(self, token: str, audience: str, session_id: str | None = None) -> Claims:
        """The token's claims if it is ours, for `audience` (and `session_id`), and current."""
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenInvalid(f"the token is longer than {MAX_TOKEN_CHARS} characters")
        try:
            encoded = self._signer.unsign(token)
        except BadSignature:
            raise TokenInvalid("the token failed verification (tampered or not ours)") from None
        try:
            payload = json.loads(base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4)))
            claims = Claims(
                str(payload["sid"]),
                str(payload["aud"]),
                int(payload["exp"]),
                str(payload.get("jti", "")),
            )
        except (binascii.Error, KeyError, TypeError, ValueError):
            # Authentic but unreadable means a bug or a format change, never a client's input.
            raise TokenInvalid("the token's claims cannot be read") from None
        # Checked only once authentic, so a forged token can never pick the error.
        if claims.audience != audience:
            raise TokenForeign(f"the token is for {claims.audience!r}, not {audience!r}")
        if session_id is not None and claims.session_id != session_id:
            raise TokenForeign(f"the token belongs to another session, not {session_id}")
        if claims.expires_at <= time.time():
            raise TokenExpired("the token has expired; ask the API for a fresh one")
        return claims
