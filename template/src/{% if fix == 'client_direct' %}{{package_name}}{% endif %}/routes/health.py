"""Liveness, with the name of the instance that answered."""

from fastapi import APIRouter

from .deps import SettingsDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(settings: SettingsDep) -> dict[str, str]:
    # "none": this API keeps no session state, so there is no store to reach.
    return {"instance": settings.instance_name, "store": "none"}
