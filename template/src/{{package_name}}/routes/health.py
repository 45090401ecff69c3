"""Liveness and store reachability, with the name of the instance that answered."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..sessions.backend import StoreUnavailable
from ..sessions.hydrate import StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(request: Request, store: StoreDep) -> JSONResponse:
    instance = request.app.state.settings.instance_name
    try:
        await store.backend.ping()
    except StoreUnavailable:
        return JSONResponse({"instance": instance, "store": "unavailable"}, status_code=503)
    return JSONResponse({"instance": instance, "store": "ok"})
