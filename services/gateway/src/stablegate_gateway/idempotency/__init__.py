"""`Idempotency-Key` on every POST: one execution per (merchant, key), its response
stored with the request's writes and replayed to retries (see `idempotency.middleware`)."""
