"""The payment-intent read model: one row per intent, the newest snapshot the gateway
published (`intent.created` / `intent.updated`)."""
