"""Live updates: a server-sent event stream of intent changes for the open pages."""
