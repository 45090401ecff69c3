"""The error vocabulary: every outcome a client can see is a `ClientError` with a stable `code`.

What each code looks like to a client (its HTTP problem, its WebSocket close code) is one table,
`PROBLEMS` in problems.py. Nothing here knows HTTP: the fix's own modules raise these errors.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


class ClientError(Exception):
    """An outcome a client sees. The message is the problem's detail (unless the table gives a
    fixed one); `extra` holds more members of the problem object."""

    code: ClassVar[str]

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def headers(self) -> dict[str, str]:
        """Headers this one error adds to its problem's own (a Retry-After it computed)."""
        return {}


@dataclass(frozen=True)
class ProblemType:
    """How one code looks to a client: an RFC 9457 problem, and how a WebSocket closes with it."""

    status: int
    title: str
    # For errors whose message is for the log (which host, what failed), not for the client.
    detail: str | None = None
    retry_after: int | None = None
    www_authenticate: str | None = None
    # A WebSocket that fails this way closes with this code, the error's code as its reason.
    close_code: int | None = None

    @property
    def headers(self) -> dict[str, str]:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.www_authenticate is not None:
            headers["WWW-Authenticate"] = self.www_authenticate
        return headers


class ProblemTable:
    """Each client error's problem; a subclass without its own entry looks like its base."""

    def __init__(self, problems: Mapping[type[ClientError], ProblemType]) -> None:
        self._problems = problems

    def __getitem__(self, error: type[ClientError]) -> ProblemType:
        for kind in error.__mro__:
            if kind in self._problems:
                return self._problems[kind]
        raise KeyError(f"{error.__name__} has no problem in PROBLEMS (problems.py)")

    def by_code(self, code: str) -> type[ClientError] | None:
        """The error a code names, for codes that arrive as text (from another process)."""
        return next((error for error in self._problems if error.code == code), None)

    def closing(self, error: type[ClientError]) -> tuple[int, str]:
        """The WebSocket close code and reason for `error`."""
        close_code = self[error].close_code
        assert close_code is not None, f"{error.__name__} has no close code in PROBLEMS"
        return close_code, error.code
