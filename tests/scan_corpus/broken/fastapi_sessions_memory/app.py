from uuid import UUID, uuid4

from fastapi import Depends, FastAPI, Response
from fastapi_sessions.backends.implementations import InMemoryBackend
from fastapi_sessions.frontends.implementations import CookieParameters, SessionCookie
from pydantic import BaseModel


class Basket(BaseModel):
    items: list[str]


app = FastAPI()
cookie = SessionCookie(
    cookie_name="basket",
    identifier="general_verifier",
    auto_error=True,
    secret_key="from-configuration",
    cookie_params=CookieParameters(),
)
backend = InMemoryBackend[UUID, Basket]()


@app.post("/basket")
async def open_basket(response: Response) -> dict[str, str]:
    session = uuid4()
    await backend.create(session, Basket(items=[]))
    cookie.attach_to_response(response, session)
    return {"basket": str(session)}


@app.get("/basket")
async def read_basket(session: UUID = Depends(cookie)) -> Basket | None:
    return await backend.read(session)
