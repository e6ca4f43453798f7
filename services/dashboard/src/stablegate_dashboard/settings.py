"""Dashboard settings: only the shared concerns so far (issue 2: no users, no pages)."""

from __future__ import annotations

from stablegate_common.config import ServiceSettings


class DashboardSettings(ServiceSettings):
    pass
