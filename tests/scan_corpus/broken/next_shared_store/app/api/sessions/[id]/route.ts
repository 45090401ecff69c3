import * as store from "../../../../lib/store";

export async function GET(_: Request, { params }: { params: Promise<{ id: string }> }) {
  const session = store.sessions.get((await params).id);
  return session ? Response.json(session) : Response.json({ error: "not found" }, { status: 404 });
}

export async function DELETE(_: Request, { params }: { params: Promise<{ id: string }> }) {
  store.sessions.delete((await params).id);
  return new Response(null, { status: 204 });
}
