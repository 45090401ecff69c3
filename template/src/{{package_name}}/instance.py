"""Middleware shared by every app of the project."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class InstanceHeader:
    """Names the answering instance in `X-Instance`, so multi-instance behaviour is visible."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.header = (b"x-instance", name.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_with_header)
