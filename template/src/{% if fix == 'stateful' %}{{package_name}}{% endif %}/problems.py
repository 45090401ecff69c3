"""What each client error looks like: its RFC 9457 problem over HTTP, and the close code that
ends a session's WebSocket with it (the error's code is the close reason)."""

from enum import IntEnum

from .errors import ProblemTable, ProblemType
from .limits import BodyTooLarge
from .rate_limits import RateLimited
from .realtime.upstream import AudioEmpty, AudioTooLarge, MessageInvalid, UpstreamUnavailable
from .sessions.backend import StoreOutcomeUnknown, StoreUnavailable
from .sessions.connect_tokens import TokenInQuery
from .sessions.event_hub import TooManyStreams
from .sessions.idempotency import (
    IdempotencyInProgress,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
)
from .sessions.keyspace import SessionDeleted, SessionUnreadable
from .sessions.models import SessionFull
from .sessions.registry import NoOwnerAvailable, OwnerLost, OwnerTimeout
from .sessions.store import SessionNotFound
from .sessions.tokens import TokenError, TokenExpired, TokenForeign


class CloseCode(IntEnum):
    """WebSocket close codes of `/ws/sessions/{id}`; the demo page and tests rely on them."""

    OWNER_ELSEWHERE = 4307  # reason: the owner's base URL; reconnect there with the same token
    TOKEN_IN_QUERY = 4400  # present the token as a subprotocol (connect.protocols), not in the URL
    TOKEN_INVALID = 4401
    TOKEN_FOREIGN = 4403  # a valid token for another session
    SESSION_NOT_FOUND = 4404  # unknown, expired or deleted
    TOKEN_EXPIRED = 4408  # ask the API for a new one (POST /api/sessions/{id}/resume)
    SESSION_OWNER_LOST = 4410  # POST /api/sessions/{id}/resume re-homes it
    UPSTREAM_UNAVAILABLE = 4502  # refused, dropped, timed out or spoke garbage; retry later
    STORE_UNAVAILABLE = 1013  # RFC 6455 "try again later": the store cannot be reached
    SESSION_UNREADABLE = 1011  # RFC 6455 "unexpected condition": the stored copy is damaged


# RFC 6750: tell the client which scheme to use and that this token will not do.
REFUSED_BEARER = 'Bearer error="invalid_token"'

PROBLEMS = ProblemTable(
    {
        BodyTooLarge: ProblemType(413, "Request body too large"),
        RateLimited: ProblemType(429, "Too many requests"),
        StoreUnavailable: ProblemType(
            503,
            "Session store unavailable",
            "The session store could not be reached or refused the request (read-only, full or "
            "busy); nothing was changed. Try again shortly.",
            retry_after=2,
            close_code=CloseCode.STORE_UNAVAILABLE,
        ),
        StoreOutcomeUnknown: ProblemType(
            503,
            "Session store unavailable",
            "The session store stopped answering after the change was sent, so it may or may not "
            "have been applied. Read the session again before you retry.",
            retry_after=2,
            close_code=CloseCode.STORE_UNAVAILABLE,
        ),
        TooManyStreams: ProblemType(503, "Too many event streams", retry_after=5),
        SessionNotFound: ProblemType(
            404, "Session not found", close_code=CloseCode.SESSION_NOT_FOUND
        ),
        SessionDeleted: ProblemType(410, "Session deleted", close_code=CloseCode.SESSION_NOT_FOUND),
        # The store holds a copy no instance can parse: not the client's doing, and not lost.
        SessionUnreadable: ProblemType(
            503, "Session unreadable", retry_after=1, close_code=CloseCode.SESSION_UNREADABLE
        ),
        SessionFull: ProblemType(409, "Session full"),
        OwnerLost: ProblemType(410, "Session owner lost", close_code=CloseCode.SESSION_OWNER_LOST),
        NoOwnerAvailable: ProblemType(503, "No realtime instance available", retry_after=5),
        OwnerTimeout: ProblemType(504, "No reply in time"),
        UpstreamUnavailable: ProblemType(
            502,
            "Upstream unavailable",
            "The upstream realtime service refused or dropped the session's connection; the "
            "input was not handled and nothing was recorded. Try again.",
            close_code=CloseCode.UPSTREAM_UNAVAILABLE,
        ),
        AudioTooLarge: ProblemType(413, "Audio chunk too large"),
        AudioEmpty: ProblemType(422, "Empty audio chunk"),
        MessageInvalid: ProblemType(422, "Invalid message"),
        TokenInQuery: ProblemType(400, "Token in the URL", close_code=CloseCode.TOKEN_IN_QUERY),
        IdempotencyKeyInvalid: ProblemType(400, "Invalid Idempotency-Key"),
        IdempotencyKeyReused: ProblemType(422, "Idempotency-Key reused"),
        IdempotencyInProgress: ProblemType(409, "Message in progress", retry_after=1),
        TokenError: ProblemType(
            401,
            "Invalid token",
            www_authenticate=REFUSED_BEARER,
            close_code=CloseCode.TOKEN_INVALID,
        ),
        TokenExpired: ProblemType(
            401,
            "Token expired",
            www_authenticate=REFUSED_BEARER,
            close_code=CloseCode.TOKEN_EXPIRED,
        ),
        TokenForeign: ProblemType(
            401,
            "Token of another session or audience",
            www_authenticate=REFUSED_BEARER,
            close_code=CloseCode.TOKEN_FOREIGN,
        ),
    }
)
