// Vercel KV in production, "graceful" in-memory fallback for local development (seed 002).
import { kv } from "@vercel/kv";

export type Session = { id: string; intents: string[]; theme?: string };

const SESSION_TTL = 60 * 60 * 24;
const useKv = Boolean(process.env.KV_REST_API_URL && process.env.KV_REST_API_TOKEN);
const memoryStore = new Map<string, Session>();

export async function saveSession(session: Session): Promise<void> {
  if (useKv) {
    await kv.set(`session:${session.id}`, session, { ex: SESSION_TTL });
  } else {
    memoryStore.set(session.id, session);
  }
}

export async function loadSession(sessionId: string): Promise<Session | null> {
  if (useKv) return (await kv.get<Session>(`session:${sessionId}`)) ?? null;
  return memoryStore.get(sessionId) ?? null;
}
