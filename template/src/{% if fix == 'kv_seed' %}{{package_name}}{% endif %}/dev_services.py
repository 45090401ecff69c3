"""What the local cluster runs beside the API instances of the KV + seed fix: the store."""

from collections.abc import Mapping
from contextlib import ExitStack

from .cluster import Instance
from .dev_store import shared_store


def start(
    stack: ExitStack,
    config: Mapping[str, str | None],
    env: dict[str, str],
    port: int,
    host: str,
    started: list[Instance],
) -> dict[str, str]:
    """The environment the API instances need to reach the store."""
    return {"REDIS_URL": shared_store(stack, config)}
