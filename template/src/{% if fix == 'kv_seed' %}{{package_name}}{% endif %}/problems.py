"""What each client error looks like over HTTP: its RFC 9457 problem."""

from .assistant import UpstreamUnavailable
from .errors import ProblemTable, ProblemType
from .limits import BodyTooLarge
from .rate_limits import RateLimited
from .sessions.backend import StoreOutcomeUnknown, StoreUnavailable
from .sessions.event_hub import TooManyStreams
from .sessions.idempotency import IdempotencyKeyInvalid, IdempotencyKeyReused
from .sessions.keyspace import SessionDeleted, SessionUnreadable
from .sessions.models import SessionFull
from .sessions.seed import SeedError, SeedExpired, SeedSessionMismatch, SeedTooLarge
from .sessions.store import ReplyStreaming, SessionBusy, SessionNotFound

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
        ),
        StoreOutcomeUnknown: ProblemType(
            503,
            "Session store unavailable",
            "The session store stopped answering after the change was sent, so it may or may not "
            "have been applied. Read the session again before you retry; a message sent with an "
            "Idempotency-Key can be sent again with the same key, as it is stored at most once.",
            retry_after=2,
        ),
        TooManyStreams: ProblemType(503, "Too many event streams", retry_after=5),
        # A misconfigured instance, mid-rollout of a key: another instance may read it.
        SessionUnreadable: ProblemType(503, "Session unreadable here", retry_after=1),
        SessionNotFound: ProblemType(404, "Session not found"),
        SessionDeleted: ProblemType(410, "Session deleted"),
        SessionBusy: ProblemType(409, "Session busy", retry_after=1),
        SessionFull: ProblemType(409, "Session full"),
        ReplyStreaming: ProblemType(409, "Reply in progress", retry_after=1),
        UpstreamUnavailable: ProblemType(
            502,
            "Assistant unavailable",
            "The assistant's provider failed or went silent. Your message is stored without a "
            "reply (the session's events say `interrupted`); send a new message to go on.",
        ),
        IdempotencyKeyInvalid: ProblemType(400, "Invalid Idempotency-Key"),
        IdempotencyKeyReused: ProblemType(422, "Idempotency-Key reused"),
        SeedError: ProblemType(400, "Invalid seed"),
        SeedExpired: ProblemType(400, "Seed expired"),
        SeedSessionMismatch: ProblemType(400, "Seed of another session"),
        SeedTooLarge: ProblemType(413, "Seed too large"),
    }
)
