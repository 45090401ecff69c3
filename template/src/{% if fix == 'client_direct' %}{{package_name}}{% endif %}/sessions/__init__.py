"""The client-direct fix: the browser holds the live session with the upstream; this API keeps
nothing and only mints short-lived, session-scoped credentials for it."""
