"""Random values drawn at import that sign nothing: a per-process request id prefix."""

import itertools
import secrets

from fastapi import FastAPI, Request, Response

app = FastAPI()

INSTANCE_KEY = secrets.token_hex(4)  # tells instances apart in the logs
counter = itertools.count()


@app.middleware("http")
async def request_id(request: Request, call_next) -> Response:  # type: ignore[no-untyped-def]
    response: Response = await call_next(request)
    response.headers["X-Request-Id"] = f"{INSTANCE_KEY}-{next(counter)}"
    return response
