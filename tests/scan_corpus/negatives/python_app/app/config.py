"""Constants, caches of immutable configuration, type-only declarations: all per-process, all
the same on every instance, none of them session state."""

import logging
from functools import cache, lru_cache
from typing import Final, TypedDict

from pydantic_settings import BaseSettings

logger = logging.getLogger(__name__)

ROLES = ("user", "assistant")
DEFAULT_HEADERS = {"Cache-Control": "no-store"}
ALLOWED_MODELS: Final = frozenset({"small", "large"})
SESSION_ID_BYTES = 16
SESSION_COOKIE = "sid"
ERROR_CODES = {"session_not_found": 404, "seed_invalid": 400}

# Declared, never assigned: a type for readers, not a container.
sessions_by_id: dict[str, "SessionRecord"]


class SessionRecord(TypedDict):
    session_id: str
    turns: list[str]


class Settings(BaseSettings):
    redis_url: str
    seed_keys: list[str]


@lru_cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]


@cache
def load_prompt(name: str) -> str:
    return f"You are the {name} assistant."


_templates: dict[str, str] = {}


def template(name: str) -> str:
    if name not in _templates:
        _templates[name] = load_prompt(name).upper()
    return _templates[name]


HANDLERS: dict[str, object] = {}


def register(name: str) -> object:
    def decorate(function: object) -> object:
        HANDLERS[name] = function
        return function

    return decorate
