"""Per-API-key rate limits: a token bucket per key in PostgreSQL, shared by every replica."""
