"""Liveness and store reachability, with the name of the instance that answered."""

from fastapi import APIRouter

from ..sessions.backend import StoreUnavailable
from .deps import BackendDep, SettingsDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(settings: SettingsDep, backend: BackendDep) -> dict[str, str]:
    instance = settings.instance_name
    try:
        await backend.ping()
    except StoreUnavailable as error:
        # Which store, and why: a cluster that waits for this instance prints it.
        raise StoreUnavailable(
            str(error), instance=instance, store="unavailable", error=str(error)
        ) from error
    return {"instance": instance, "store": "ok"}
