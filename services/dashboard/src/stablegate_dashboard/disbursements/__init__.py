"""Refunds and payouts as operators see and approve them (through the gateway)."""
