type Session = { id: string; turns: string[] };

export class SessionStore {
  private sessions = new Map<string, Session>();

  create(id: string): Session {
    const session = { id, turns: [] };
    this.sessions.set(id, session);
    return session;
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }
}
