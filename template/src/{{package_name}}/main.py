"""The ASGI entry point: `uvicorn <package>.main:app`."""

from .app import create_app
from .settings import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # Exit with the reason instead of serving sessions that would not survive another instance.
    raise SystemExit(f"error: {error}") from None
