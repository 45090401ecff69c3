"""Who is calling: the one place to connect this API to your users.

`authenticate` is a FastAPI dependency. It returns the caller's `Identity`, or None for an
anonymous caller; rate limits count per identity when there is one, else per IP address. It
returns None until you wire it to your own authentication, for example:

A bearer JWT from your identity provider (`uv add pyjwt`):

    import jwt
    from fastapi.security.utils import get_authorization_scheme_param

    async def authenticate(request: Request) -> Identity | None:
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            claims = jwt.decode(token, PUBLIC_KEY, algorithms=["RS256"], audience="my-api")
        except jwt.InvalidTokenError:
            return None
        return Identity(subject=claims["sub"])

Your app's session cookie (Starlette's SessionMiddleware, or your framework's own):

    async def authenticate(request: Request) -> Identity | None:
        user_id = request.session.get("user_id")
        return Identity(subject=str(user_id)) if user_id else None

A route that must know its caller declares `identity: IdentityDep`; tests replace the function
with `app.dependency_overrides[authenticate] = ...`. Keep it fast: it runs on every request
that declares it, on whichever instance the request lands.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from .errors import ClientError


class IdentityRequired(ClientError):
    code = "identity_required"

    def __init__(self) -> None:
        super().__init__(
            "This request needs a signed-in caller, and it carries no identity this API accepts."
        )


@dataclass(frozen=True)
class Identity:
    # Your user's stable id (a JWT's `sub`, your users table's key); never a secret.
    subject: str


async def authenticate(request: Request) -> Identity | None:
    """The caller's identity, or None when the request carries none (anonymous)."""
    return None


IdentityDep = Annotated[Identity | None, Depends(authenticate)]
