"""The demo page: a chat that survives whichever instance answers each request."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)

PAGE = Path(__file__).parent.parent / "static" / "index.html"


@router.get("/")
async def demo_page() -> FileResponse:
    return FileResponse(PAGE, media_type="text/html")
