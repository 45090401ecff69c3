// Cold-start recovery with a URL-borne seed (seed 003): a Map per instance, and ensureSession.
export type ChatMessage = { role: "customer" | "installer"; text: string };
export type CaseState = { sessionId: string; stage: string };
export type ServerSession = { case: CaseState; customerMessages: ChatMessage[] };

const sessions = new Map<string, ServerSession>();

export function hydrateFromSeed(sessionId: string, seed: string): CaseState | null {
  const parsed = JSON.parse(Buffer.from(seed, "base64url").toString("utf8"));
  if (parsed.case.sessionId !== sessionId) return null;
  const existing = sessions.get(sessionId);
  if (!existing || parsed.customerMessages.length >= existing.customerMessages.length) {
    sessions.set(sessionId, parsed);
  }
  return sessions.get(sessionId)!.case;
}

export function ensureSession(sessionId: string): ServerSession {
  let session = sessions.get(sessionId);
  if (!session) {
    session = { case: { sessionId, stage: "start" }, customerMessages: [] };
    sessions.set(sessionId, session);
  }
  return session;
}

export function buildCaseSeed(s: ServerSession): string {
  return Buffer.from(JSON.stringify(s), "utf8").toString("base64url");
}
