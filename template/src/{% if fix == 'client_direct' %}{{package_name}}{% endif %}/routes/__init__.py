"""The HTTP surface. The route with `{session_id}` takes `RefreshClaims` (deps.py): this API
keeps no session, so a verified refresh token is all it needs."""
