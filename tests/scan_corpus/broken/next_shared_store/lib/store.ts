// The sessions live in this module; the route handlers change them.
export type ChatSession = { id: string; turns: string[] };

export const sessions = new Map<string, ChatSession>();
