from fastapi import FastAPI, HTTPException

import store

app = FastAPI()


@app.post("/chats/{chat_id}/messages")
def post_message(chat_id: str, text: str) -> list[str]:
    store.transcripts[chat_id] = [*store.transcripts.get(chat_id, []), text]
    return store.transcripts[chat_id]


@app.get("/chats/{chat_id}")
def get_chat(chat_id: str) -> list[str]:
    if chat_id not in store.transcripts:
        raise HTTPException(404, "Chat not found")
    return store.transcripts[chat_id]
