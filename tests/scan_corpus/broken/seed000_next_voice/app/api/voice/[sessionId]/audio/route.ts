import { NextResponse } from "next/server";
import { getVoiceSession } from "../../../../../lib/voice-sessions";

export async function POST(req: Request, ctx: { params: Promise<{ sessionId: string }> }) {
  const { sessionId } = await ctx.params;
  const session = getVoiceSession(sessionId);
  if (!session) {
    return NextResponse.json({ error: "Session not found" }, { status: 404 });
  }
  session.upstream.appendInputAudio(new Int16Array(await req.arrayBuffer()));
  return NextResponse.json({ ok: true });
}
