import { NextResponse } from "next/server";
import { ensureSession, hydrateFromSeed } from "@/lib/sessions";

export async function GET(req: Request, ctx: { params: Promise<{ sessionId: string }> }) {
  const { sessionId } = await ctx.params;
  const seed = new URL(req.url).searchParams.get("seed");
  if (seed) hydrateFromSeed(sessionId, seed);
  const session = ensureSession(sessionId);
  return NextResponse.json({ case: session.case });
}
