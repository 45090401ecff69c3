"""Signing keys from configuration: every instance verifies what any other signed."""

import hmac
import secrets

from fastapi import FastAPI, Header, HTTPException
from pydantic_settings import BaseSettings
from starlette.middleware.sessions import SessionMiddleware


class Settings(BaseSettings):
    token_signing_key: str  # required: the app does not start without it
    cookie_secret: str


settings = Settings()  # type: ignore[call-arg]

app = FastAPI()
app.add_middleware(SessionMiddleware, secret_key=settings.cookie_secret)


def new_session_id() -> str:
    return secrets.token_urlsafe(16)


@app.get("/api/seed/verify")
def verify(seed: str, signature: str = Header()) -> dict[str, bool]:
    key = settings.token_signing_key.encode()
    expected = hmac.new(key, seed.encode(), "sha256").hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise HTTPException(403, "bad signature")
    return {"ok": True}
