"""The demo page: a chat that survives whichever instance answers each request."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).parent.parent / "static"


@router.get("/")
async def demo_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@router.get("/demo.css")
async def demo_stylesheet() -> FileResponse:
    return FileResponse(STATIC / "demo.css", media_type="text/css")
