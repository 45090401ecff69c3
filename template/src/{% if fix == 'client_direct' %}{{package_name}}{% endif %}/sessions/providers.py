"""Providers: how the API gets the browser a credential for the realtime upstream.

The API keeps nothing: each call mints (or asks the provider for) a fresh short-lived credential
for one session. Adding a provider is one class with `name` and `connect()`.
"""

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from ..errors import ClientError
from .tokens import TokenCodec


class ProviderUnavailable(ClientError):
    """The provider could not mint a credential; `status` is its HTTP status, if it answered."""

    code = "upstream_unavailable"

    def __init__(self, provider: str, status: int | None = None) -> None:
        answered = f"answered HTTP {status}" if status else "could not be reached"
        super().__init__(
            f"The {provider} provider {answered} while minting a client secret; nothing was "
            "created. Try again shortly.",
            provider=provider,
            provider_status=status,
        )


@dataclass(frozen=True)
class Connect:
    """What a browser needs to open its own connection to the upstream."""

    url: str
    token: str
    expires_at: int
    provider: str


class Provider(Protocol):
    name: str

    async def connect(self, session_id: str) -> Connect: ...

    async def close(self) -> None: ...


class LocalProvider:
    """The dev upstream shipped in this project (`<package>.dev_upstream:app`): our own token."""

    name = "local"

    def __init__(self, codec: TokenCodec, *, url: str, audience: str, ttl_seconds: int) -> None:
        self._codec = codec
        self._url = url
        self._audience = audience
        self._ttl = ttl_seconds

    async def connect(self, session_id: str) -> Connect:
        token, claims = self._codec.mint(session_id, self._audience, self._ttl)
        return Connect(self._url, token, claims.expires_at, self.name)

    async def close(self) -> None:
        return None


class OpenAIProvider:
    """OpenAI Realtime: an ephemeral client secret, minted with the server's API key.

    The session configuration is pinned here, server-side, in the client-secrets request; the
    API key stays on the server (only in the Authorization header of that request).
    """

    name = "openai"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str,
        realtime_url: str,
        session: dict[str, Any],
        ttl_seconds: int,
        timeout_seconds: float,
    ) -> None:
        self._session = session
        self._ttl = ttl_seconds
        self._url = f"{realtime_url}?{urlencode({'model': session['model']})}"
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            # A provider that does not answer is reported (502), not waited for.
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 3)),
        )

    async def connect(self, session_id: str) -> Connect:
        body = {
            "expires_after": {"anchor": "created_at", "seconds": self._ttl},
            "session": self._session,
        }
        try:
            response = await self._client.post("/realtime/client_secrets", json=body)
        # InvalidURL is not an HTTPError: a malformed OPENAI_BASE_URL must be a 502 too, not a 500.
        except (httpx.HTTPError, httpx.InvalidURL):
            raise ProviderUnavailable(self.name) from None
        if response.status_code != 200:
            # Never the provider's body: it may echo the request, key prefixes or account data.
            raise ProviderUnavailable(self.name, response.status_code)
        try:
            answer = response.json()
            secret, expires_at = answer["value"], int(answer["expires_at"])
        except (ValueError, KeyError, TypeError):
            secret, expires_at = None, 0
        if not isinstance(secret, str) or not secret:
            # A null or empty secret would reach the browser as a token that can never connect.
            raise ProviderUnavailable(self.name, response.status_code)
        return Connect(self._url, secret, expires_at, self.name)

    async def close(self) -> None:
        await self._client.aclose()
