"""Library defaults that keep sessions in one process, read from `memory_defaults.toml`."""

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

ANY = "*"


@dataclass(frozen=True)
class MemoryDefault:
    name: str
    package: str
    imports: tuple[str, ...]
    keeps: str
    holds: str  # "live" or "data"
    instead: str
    safe_keyword: str = ""
    safe_value: Any = None  # `ANY`: the keyword with any value
    safe_call: str = ""

    @property
    def fixes(self) -> tuple[str, ...]:
        return ("stateful", "client_direct") if self.holds == "live" else ("kv_seed",)

    @property
    def safe(self) -> str:
        """How a call opts out, as the finding says it."""
        if self.safe_call:
            return f"a `.{self.safe_call}(...)` on it"
        if self.safe_keyword and self.safe_value == ANY:
            return f"a `{self.safe_keyword}` option"
        if self.safe_keyword:
            return f"`{self.safe_keyword}={self.safe_value!r}`"
        return ""


@cache
def memory_defaults(language: str) -> dict[str, MemoryDefault]:
    """The defaults of one language ("python", "javascript"), by the name a call uses."""
    text = files(__package__).joinpath("memory_defaults.toml").read_text(encoding="utf-8")
    found = {}
    for entry in tomllib.loads(text).get(language, []):
        safe = entry.get("safe", {})
        default = MemoryDefault(
            name=entry["name"],
            package=entry["package"],
            imports=tuple(entry["imports"]),
            keeps=entry["keeps"],
            holds=entry["holds"],
            instead=entry["instead"],
            safe_keyword=safe.get("keyword", ""),
            safe_value=safe.get("value"),
            safe_call=safe.get("calls", ""),
        )
        found[default.name] = default
    return found
