const express = require("express");

function createApp() {
  const app = express();
  const conversations = new Map();

  app.post("/conversations", (req, res) => {
    const id = crypto.randomUUID();
    conversations.set(id, { id, turns: [] });
    res.status(201).json({ id });
  });

  app.post("/conversations/:id/messages", (req, res) => {
    const conversation = conversations.get(req.params.id);
    if (!conversation) return res.status(404).end();
    conversation.turns.push(req.body.text);
    res.json(conversation);
  });

  return app;
}

module.exports = { createApp };
