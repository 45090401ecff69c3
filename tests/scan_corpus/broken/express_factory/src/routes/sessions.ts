import { Hono } from "hono";
import { sessionStore } from "../lib/store-instance";

export const sessions = new Hono();

sessions.post("/sessions/:id", (c) => c.json(sessionStore.create(c.req.param("id"))));
sessions.get("/sessions/:id", (c) => {
  const session = sessionStore.get(c.req.param("id"));
  return session ? c.json(session) : c.notFound();
});
