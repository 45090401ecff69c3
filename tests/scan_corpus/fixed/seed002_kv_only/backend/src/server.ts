import express from "express";
import { loadSession, saveSession } from "./session-storage";

const app = express();
app.use(express.json());

app.post("/api/sessions", async (req, res) => {
  const session = { id: crypto.randomUUID(), intents: [] };
  await saveSession(session);
  res.status(201).json(session);
});

app.post("/api/sessions/:id/pages", async (req, res) => {
  const session = await loadSession(req.params.id);
  if (!session) return res.status(404).json({ error: "Session not found" });
  session.intents.push(req.body.intent);
  await saveSession(session);
  res.json(session);
});

export default app;
