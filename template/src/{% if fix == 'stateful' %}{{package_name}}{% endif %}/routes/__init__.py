"""The HTTP surface of the API instances. Every route with `{session_id}` takes an
`OwnedSession`, a `SessionInbox` or a `KnownSession` (deps.py); the realtime service's sockets
are in realtime/."""
