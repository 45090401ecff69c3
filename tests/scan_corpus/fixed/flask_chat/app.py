"""The Flask chat fixed: one key from the environment, conversations in Redis."""

import json
import os
import secrets

import redis
from flask import Flask, abort, jsonify, request, session

app = Flask(__name__)
app.secret_key = os.environ["FLASK_SECRET_KEY"]
store = redis.Redis.from_url(os.environ["REDIS_URL"])


@app.route("/chat", methods=["POST"])
def chat() -> object:
    if "user_id" not in session:
        session["user_id"] = secrets.token_urlsafe(16)
    key = f"conversation:{session['user_id']}"
    store.rpush(key, json.dumps({"role": "user", "text": request.json["text"]}))
    return jsonify(history=[json.loads(turn) for turn in store.lrange(key, 0, -1)])


@app.get("/history")
def history() -> object:
    if "user_id" not in session:
        abort(404)
    key = f"conversation:{session['user_id']}"
    return jsonify(history=[json.loads(turn) for turn in store.lrange(key, 0, -1)])
