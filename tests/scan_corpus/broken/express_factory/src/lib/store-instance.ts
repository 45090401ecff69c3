import { SessionStore } from "./session-store";

export const sessionStore = new SessionStore();
