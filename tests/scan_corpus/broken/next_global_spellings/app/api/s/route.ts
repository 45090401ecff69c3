import { sessions, rooms, peers } from "@/lib/registry";
export async function POST(req: Request) {
  const { id } = await req.json();
  sessions.set(id, { id, turns: [] });
  rooms.set(id, []);
  peers.set(id, new RTCPeerConnection());
  return Response.json({ id });
}
import { history } from "@/lib/registry";
export async function PUT(req: Request) {
  const { sessionId, text } = await req.json();
  history.set(sessionId, [text]);
  return Response.json({ ok: true });
}
