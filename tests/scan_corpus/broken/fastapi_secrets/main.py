"""Signing keys drawn at import: every instance signs with its own."""

import hmac
import secrets

from fastapi import FastAPI, Header, HTTPException
from pydantic import Field
from pydantic_settings import BaseSettings
from starlette.middleware.sessions import SessionMiddleware


class Settings(BaseSettings):
    token_signing_key: str = Field(default_factory=lambda: secrets.token_hex(32))


settings = Settings()
SEED_SECRET = secrets.token_bytes(32)

app = FastAPI()
app.add_middleware(SessionMiddleware, secret_key=secrets.token_urlsafe(32))


@app.get("/api/seed/verify")
def verify(seed: str, signature: str = Header()) -> dict[str, bool]:
    expected = hmac.new(SEED_SECRET, seed.encode(), "sha256").hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise HTTPException(403, "bad signature")
    return {"ok": True}
