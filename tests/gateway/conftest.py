"""Gateway suite: fixtures come from tests/fixtures/gateway.py and payments.py (plugins)."""
