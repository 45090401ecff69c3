import { NextResponse } from "next/server";
import { createVoiceSession } from "@/lib/voice-sessions";

export async function POST() {
  const session = await createVoiceSession();
  return NextResponse.json({ sessionId: session.id });
}
