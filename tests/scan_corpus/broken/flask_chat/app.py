"""A Flask chat: conversations per user in a defaultdict, and a key drawn at every start."""

import os
from collections import defaultdict

from flask import Flask, jsonify, request, session

app = Flask(__name__)
app.secret_key = os.urandom(24)

conversations: defaultdict[str, list[dict[str, str]]] = defaultdict(list)


@app.route("/chat", methods=["POST"])
def chat() -> object:
    user_id = session.setdefault("user_id", os.urandom(8).hex())
    conversations[user_id].append({"role": "user", "text": request.json["text"]})
    return jsonify(history=conversations[user_id])


@app.get("/history")
def history() -> object:
    return jsonify(history=conversations.get(session.get("user_id", ""), []))
