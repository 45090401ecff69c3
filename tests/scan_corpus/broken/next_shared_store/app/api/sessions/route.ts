import { sessions } from "@/lib/store";

export async function POST() {
  const id = crypto.randomUUID();
  sessions.set(id, { id, turns: [] });
  return Response.json({ sessionId: id }, { status: 201 });
}
