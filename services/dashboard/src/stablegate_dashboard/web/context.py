"""What a request handler needs, built once at start and kept on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from stablegate_common.auth import JwtSigner
from stablegate_common.core.assets import AssetRegistry
from stablegate_common.db import Database
from stablegate_common.http.health import Health
from stablegate_dashboard.gateway_api import GatewayApi, GatewayOpsApi
from stablegate_dashboard.settings import DashboardSettings
from stablegate_dashboard.system.probes import SystemProbe
from stablegate_dashboard.web.templating import Pages


@dataclass
class DashboardContext:
    settings: DashboardSettings
    db: Database
    registry: AssetRegistry
    signer: JwtSigner
    pages: Pages
    gateway: GatewayApi
    ops: GatewayOpsApi
    probe: SystemProbe
    health: Health


def context(request: Request) -> DashboardContext:
    ctx: DashboardContext = request.app.state.dashboard
    return ctx


Ctx = Annotated[DashboardContext, Depends(context)]
