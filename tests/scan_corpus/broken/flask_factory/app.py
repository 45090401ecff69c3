from flask import Flask, abort, request


def create_app() -> Flask:
    app = Flask(__name__)
    conversations: dict[str, list[str]] = {}
    live_streams: dict[str, list[str]] = {}

    @app.post("/conversations/<conversation_id>/messages")
    def post_message(conversation_id: str) -> dict[str, list[str]]:
        turns = conversations.setdefault(conversation_id, [])
        turns.append(request.json["text"])
        live_streams[conversation_id] = [request.json["text"]]
        return {"turns": turns}

    @app.get("/conversations/<conversation_id>")
    def get_conversation(conversation_id: str) -> dict[str, list[str]]:
        if conversation_id not in conversations:
            abort(404)
        return {"turns": conversations[conversation_id]}

    return app
