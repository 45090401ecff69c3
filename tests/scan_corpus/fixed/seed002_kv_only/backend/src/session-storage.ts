// Seed 002 fixed: KV everywhere (a local Redis in development), and no silent fallback.
import { createClient } from "@vercel/kv";

export type Session = { id: string; intents: string[] };

const url = process.env.KV_REST_API_URL;
const token = process.env.KV_REST_API_TOKEN;
if (!url || !token) {
  throw new Error("KV_REST_API_URL and KV_REST_API_TOKEN are required (run a local KV in development)");
}
const kv = createClient({ url, token });

export async function saveSession(session: Session): Promise<void> {
  await kv.set(`session:${session.id}`, session, { ex: 60 * 60 * 24 });
}

export async function loadSession(sessionId: string): Promise<Session | null> {
  return (await kv.get<Session>(`session:${sessionId}`)) ?? null;
}
