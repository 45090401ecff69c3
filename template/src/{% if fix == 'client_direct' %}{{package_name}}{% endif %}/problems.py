"""What each client error looks like over HTTP: its RFC 9457 problem."""

from .errors import ProblemTable, ProblemType
from .limits import BodyTooLarge
from .sessions.minter import TokenMissing
from .sessions.providers import ProviderUnavailable
from .sessions.tokens import TokenError, TokenExpired, TokenForeign

# RFC 6750: tell the client which scheme to use and that this token will not do.
REFUSED_BEARER = 'Bearer error="invalid_token"'

PROBLEMS = ProblemTable(
    {
        BodyTooLarge: ProblemType(413, "Request body too large"),
        TokenMissing: ProblemType(401, "Token missing", www_authenticate="Bearer"),
        TokenError: ProblemType(401, "Invalid token", www_authenticate=REFUSED_BEARER),
        TokenExpired: ProblemType(401, "Token expired", www_authenticate=REFUSED_BEARER),
        TokenForeign: ProblemType(
            401, "Token of another session or audience", www_authenticate=REFUSED_BEARER
        ),
        ProviderUnavailable: ProblemType(502, "Upstream unavailable", retry_after=2),
    }
)
