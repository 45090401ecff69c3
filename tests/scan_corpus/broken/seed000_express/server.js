// An Express voice relay: each session's upstream WebSocket lives in this process.
const express = require("express");
const WebSocket = require("ws");

const app = express();
app.use(express.json());

const sessions = new Map();

app.post("/api/session", (req, res) => {
  const id = Math.random().toString(36).slice(2);
  const upstream = new WebSocket(process.env.UPSTREAM_URL);
  sessions.set(id, { upstream, createdAt: Date.now() });
  res.status(201).json({ sessionId: id });
});

app.post("/api/session/:id/audio", (req, res) => {
  const session = sessions.get(req.params.id);
  if (!session) return res.status(404).json({ error: "Session not found" });
  session.upstream.send(req.body.audio);
  res.json({ ok: true });
});

app.delete("/api/session/:id", (req, res) => {
  sessions.delete(req.params.id);
  res.status(204).end();
});

app.listen(3000);
