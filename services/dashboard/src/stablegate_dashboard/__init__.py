"""The operations dashboard: read models built from every event on the bus, and the
pages ops users sign in to (Jinja2 + Bootstrap, live updates), acting through the
gateway's API."""
