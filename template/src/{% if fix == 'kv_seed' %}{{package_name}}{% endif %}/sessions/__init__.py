"""The KV + seed fix: sessions live in a shared store, and every response carries a signed seed
that lets a cold instance recover the session when the store has lost it."""
