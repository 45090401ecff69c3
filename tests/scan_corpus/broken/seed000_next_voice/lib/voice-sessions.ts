// A session manager for "create session -> stream -> send audio" (seed 000).
import { RealtimeClient } from "@openai/realtime-api-beta";

export type VoiceSession = {
  id: string;
  upstream: RealtimeClient;
  transcript: string[];
};

// singleton to survive hot reload
const globalForVoice = globalThis as unknown as { voiceSessions?: Map<string, VoiceSession> };
export const voiceSessions = globalForVoice.voiceSessions ?? new Map<string, VoiceSession>();
if (process.env.NODE_ENV !== "production") globalForVoice.voiceSessions = voiceSessions;

export async function createVoiceSession(): Promise<VoiceSession> {
  const upstream = new RealtimeClient({ apiKey: process.env.OPENAI_API_KEY });
  await upstream.connect();
  const session = { id: crypto.randomUUID(), upstream, transcript: [] };
  voiceSessions.set(session.id, session);
  return session;
}

export function getVoiceSession(id: string): VoiceSession | undefined {
  return voiceSessions.get(id);
}
