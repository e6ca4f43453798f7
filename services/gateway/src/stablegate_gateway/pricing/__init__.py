"""Fiat pricing: rate providers (static, HTTP), their cache with a staleness limit, the
de-peg guard, and the quote of an intent (amount due, locked rate, fees)."""
