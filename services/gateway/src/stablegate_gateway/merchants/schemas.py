"""Response shapes of the merchants resource (documentation; presenters build the dicts)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TokenOut(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "object": "token",
                "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9…",
                "token_type": "Bearer",
                "expires_in": 900,
                "expires_at": "2026-11-27T12:15:00.000000Z",
            }
        },
    )

    object: Literal["token"]
    access_token: str = Field(description="send as `Authorization: Bearer <access_token>`")
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="seconds until the token expires")
    expires_at: str = Field(description="ISO 8601 UTC time at which the token expires")
