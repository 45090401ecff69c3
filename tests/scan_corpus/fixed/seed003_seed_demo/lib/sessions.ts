// Seed 003 fixed: the store is the truth, the seed is a signed recovery snapshot, and an
// unknown session is reported, never invented.
import { kv } from "@vercel/kv";
import { createHmac, timingSafeEqual } from "node:crypto";

export type CaseState = { sessionId: string; stage: string; rev: number };

const SEED_KEY = process.env.SEED_KEY;
if (!SEED_KEY) throw new Error("SEED_KEY is not set: every instance needs the same key");

function sign(body: string): string {
  return createHmac("sha256", SEED_KEY!).update(body).digest("base64url");
}

export async function loadSession(sessionId: string, seed: string | null): Promise<CaseState | null> {
  const stored = await kv.get<CaseState>(`session:${sessionId}`);
  if (!seed) return stored;
  const [body, signature] = seed.split(".");
  const expected = Buffer.from(sign(body));
  if (expected.length !== signature.length || !timingSafeEqual(expected, Buffer.from(signature))) {
    return stored;
  }
  const snapshot: CaseState = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  if (snapshot.sessionId !== sessionId) return stored;
  if (!stored || snapshot.rev > stored.rev) {
    await kv.set(`session:${sessionId}`, snapshot, { ex: 86400 });
    return snapshot;
  }
  return stored;
}
