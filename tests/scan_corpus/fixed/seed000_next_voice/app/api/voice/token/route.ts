// Seed 000 fixed (client-direct): the browser connects to the upstream itself; this route only
// mints a short-lived client secret. Nothing about the session stays in this process.
import { NextResponse } from "next/server";

const REALTIME_SESSIONS_URL = "https://api.openai.com/v1/realtime/client_secrets";

export async function POST() {
  const response = await fetch(REALTIME_SESSIONS_URL, {
    method: "POST",
    headers: { Authorization: `Bearer ${process.env.OPENAI_API_KEY}` },
    body: JSON.stringify({ session: { type: "realtime", model: "gpt-realtime" } }),
  });
  if (!response.ok) {
    return NextResponse.json({ error: "upstream refused" }, { status: 502 });
  }
  const { value, expires_at } = await response.json();
  return NextResponse.json({ token: value, expiresAt: expires_at });
}
