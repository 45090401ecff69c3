import { NextResponse } from "next/server";
import { loadSession } from "@/lib/sessions";

export async function GET(req: Request, ctx: { params: Promise<{ sessionId: string }> }) {
  const { sessionId } = await ctx.params;
  const session = await loadSession(sessionId, req.headers.get("x-session-seed"));
  if (!session) {
    return NextResponse.json({ code: "session_not_found" }, { status: 404 });
  }
  return NextResponse.json({ case: session });
}
