import { Hono } from "hono";
import { randomBytes, createHmac } from "node:crypto";

type Room = { members: string[]; history: string[] };

const rooms: Record<string, Room> = {};
const SIGNING_SECRET = process.env.SIGNING_SECRET ?? randomBytes(32).toString("hex");

const app = new Hono();

app.post("/rooms/:room/join", async (c) => {
  const room = c.req.param("room");
  if (!rooms[room]) {
    rooms[room] = { members: [], history: [] };
  }
  rooms[room].members.push(await c.req.text());
  const token = createHmac("sha256", SIGNING_SECRET).update(room).digest("hex");
  return c.json({ token });
});

app.get("/rooms/:room", (c) => {
  const room = rooms[c.req.param("room")];
  return room ? c.json(room) : c.json({ error: "Room not found" }, 404);
});

export default app;
