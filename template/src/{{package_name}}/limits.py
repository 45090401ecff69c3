"""The request body limit: a body larger than MAX_BODY_BYTES is refused before the app sees it.

A declared `Content-Length` over the limit is answered at once, without reading a byte of the
body. A body of undeclared length (chunked) is read here, and refused at the first chunk past
the limit, so an instance never holds more than the limit of one request's body, and even a
route that never reads its body cannot be sent an endless one.
"""

from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ClientError


class BodyTooLarge(ClientError):
    code = "body_too_large"


class BodyLimit:
    """Refuses request bodies over `max_bytes` with the problem `refusal` makes of BodyTooLarge."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, refusal: Callable[[ClientError], Response]
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit():
            if int(declared) > self.max_bytes:
                return await self._refuse(scope, receive, send)
            # The server never passes more than the declared length.
            return await self.app(scope, receive, send)

        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body was complete
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > self.max_bytes:
                return await self._refuse(scope, receive, send)
            if not message.get("more_body", False):
                break

        body: Message | None = {"type": "http.request", "body": b"".join(chunks)}

        async def replay() -> Message:
            nonlocal body
            if body is None:
                return await receive()  # after the body: the disconnect, when it comes
            message, body = body, None
            return message

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(f"the request body exceeds the limit of {self.max_bytes} bytes")
        await self.refusal(error)(scope, receive, send)
