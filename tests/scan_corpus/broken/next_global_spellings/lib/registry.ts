type Session = { id: string; turns: string[] };
const g = globalThis as unknown as { __voiceSessions?: Map<string, Session> };
export const sessions = (g.__voiceSessions ??= new Map<string, Session>());

const h = globalThis as any;
export const rooms: Map<string, string[]> = h.__rooms ?? (h.__rooms = new Map());

export const peers = ((globalThis as any).__peers ||= new Map<string, RTCPeerConnection>());

const store = globalThis as typeof globalThis & { __store?: Map<string, string[]> };
export const history = (store.__store ??= new Map<string, string[]>());
