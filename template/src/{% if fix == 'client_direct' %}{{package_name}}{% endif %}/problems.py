"""What each client error looks like over HTTP: its RFC 9457 problem."""

from .auth import IdentityRequired
from .errors import ProblemTable, ProblemType
from .limits import BodyTooLarge
from .rate_limits import RateLimited
from .sessions.backend import StoreOutcomeUnknown, StoreUnavailable
from .sessions.minter import TokenMissing
from .sessions.providers import ProviderUnavailable
from .sessions.refresh_chains import (
    RefreshChainExpired,
    RefreshTokenForeign,
    RefreshTokenReused,
)
from .sessions.tokens import TokenError, TokenExpired, TokenForeign

# RFC 6750: tell the client which scheme to use and that this token will not do.
REFUSED_BEARER = 'Bearer error="invalid_token"'

PROBLEMS = ProblemTable(
    {
        BodyTooLarge: ProblemType(413, "Request body too large"),
        IdentityRequired: ProblemType(401, "Sign-in required", www_authenticate="Bearer"),
        RateLimited: ProblemType(429, "Too many requests"),
        StoreUnavailable: ProblemType(
            503,
            "Store unavailable",
            "The store that holds rate limits and refresh tokens could not be reached or refused "
            "the request (read-only, full or busy); nothing was minted. Try again shortly.",
            retry_after=2,
        ),
        StoreOutcomeUnknown: ProblemType(
            503,
            "Store unavailable",
            "The store stopped answering after the refresh was sent, so the refresh token may "
            "be spent. Retry with it; if it is refused, start a new session.",
            retry_after=2,
        ),
        TokenMissing: ProblemType(401, "Token missing", www_authenticate="Bearer"),
        TokenError: ProblemType(401, "Invalid token", www_authenticate=REFUSED_BEARER),
        TokenExpired: ProblemType(401, "Token expired", www_authenticate=REFUSED_BEARER),
        TokenForeign: ProblemType(
            401, "Token of another session or audience", www_authenticate=REFUSED_BEARER
        ),
        RefreshTokenReused: ProblemType(
            401, "Refresh token already used", www_authenticate=REFUSED_BEARER
        ),
        RefreshTokenForeign: ProblemType(403, "Refresh token of another caller"),
        RefreshChainExpired: ProblemType(
            401, "Session can no longer be refreshed", www_authenticate=REFUSED_BEARER
        ),
        ProviderUnavailable: ProblemType(502, "Upstream unavailable", retry_after=2),
    }
)
