"""The "Outgoing" page: funds-out signing rounds, read and driven through the gateway's
ops API (the dashboard stores none of it)."""
