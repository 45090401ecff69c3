"""The HTTP surface. Every route with `{session_id}` takes a `HydratedSession` (deps.py)."""
