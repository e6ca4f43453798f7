"""The system page: watcher heads and lag, service health, outbox backlog, queue depths."""
