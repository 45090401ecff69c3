"""ConnectTokens: the tokens that let a browser open its owner's socket.

API instances mint them, realtime instances verify them; both hold the same SESSION_KEYS, so no
call between them is needed. They are TokenCodec tokens for the realtime audience.

A token travels in the socket's subprotocols (`Sec-WebSocket-Protocol: session.v1,
token.<token>`, what `new WebSocket(url, protocols)` sends), never in its URL: URLs end up in
access logs, proxies' logs and browser history. Tokens are base64url and dots, which a
subprotocol may hold.
"""

from dataclasses import dataclass

from ..errors import ClientError
from .tokens import TokenCodec

AUDIENCE = "realtime"
# The subprotocol the owner's socket speaks, which it echoes; the token rides beside it.
SOCKET_PROTOCOL = "session.v1"
CARRIER_PREFIX = "token."  # the subprotocol `token.<token>` carries the token


class TokenInQuery(ClientError):
    """A token in the socket's URL: refused, so that no client keeps leaking it to logs."""

    code = "token_in_query"

    def __init__(self) -> None:
        super().__init__(
            "The token belongs in the socket's subprotocols, not its URL: open the socket "
            f"with the protocols of `connect.protocols` ({SOCKET_PROTOCOL!r}, "
            f"'{CARRIER_PREFIX}<token>')."
        )


def socket_protocols(token: str) -> list[str]:
    """What a client offers as the socket's subprotocols to present `token`."""
    return [SOCKET_PROTOCOL, f"{CARRIER_PREFIX}{token}"]


def presented_token(protocols: list[str]) -> str:
    """The token among a socket's offered subprotocols; '' when there is none."""
    tokens = [p for p in protocols if p.startswith(CARRIER_PREFIX)]
    return tokens[0].removeprefix(CARRIER_PREFIX) if tokens else ""


@dataclass(frozen=True)
class ConnectToken:
    token: str
    expires_at: int  # Unix time, seconds


class ConnectTokens:
    def __init__(self, codec: TokenCodec, *, ttl_seconds: int) -> None:
        self._codec = codec
        self._ttl = ttl_seconds

    def mint(self, session_id: str) -> ConnectToken:
        token, claims = self._codec.mint(session_id, AUDIENCE, self._ttl)
        return ConnectToken(token=token, expires_at=claims.expires_at)

    def verify(self, token: str, session_id: str) -> None:
        """Raises TokenInvalid, TokenExpired or TokenForeign (see tokens.py)."""
        self._codec.verify(token, AUDIENCE, session_id)
