"""The operations dashboard: read models built from every event on the bus, and (in this
issue) a read-only JSON view of them. Ops login and pages arrive in a later issue."""
