"""aiohttp chat rooms: the connected sockets of each room live in this process."""

from aiohttp import WSMsgType, web

routes = web.RouteTableDef()
rooms: dict[str, set[web.WebSocketResponse]] = {}


@routes.get("/rooms/{room}/ws")
async def join(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    members = rooms.setdefault(request.match_info["room"], set())
    members.add(ws)
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            for member in members:
                await member.send_str(message.data)
    members.discard(ws)
    return ws


app = web.Application()
app.add_routes(routes)
