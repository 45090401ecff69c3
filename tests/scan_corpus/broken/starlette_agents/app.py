from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agents.manager import load_conversation, manager, remember


async def start(request: Request) -> JSONResponse:
    conversation = manager.start(request.path_params["agent_id"])
    remember(conversation)
    return JSONResponse({"id": conversation.conversation_id})


async def turns(request: Request) -> JSONResponse:
    conversation = load_conversation(request.path_params["conversation_id"])
    return JSONResponse({"turns": conversation.turns})


app = Starlette(
    routes=[
        Route("/agents/{agent_id}", start, methods=["POST"]),
        Route("/conversations/{conversation_id}", turns),
    ]
)
