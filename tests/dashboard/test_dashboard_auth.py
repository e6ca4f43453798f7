"""Ops users, login sessions, CSRF and roles: the session cookie's flags, logout that
really ends the session, forms refused without their token, viewers who can look but
not act, and actions that reach the gateway's API exactly as meant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jose import jwt
from pydantic import SecretStr, ValidationError
from sqlalchemy import select, update

from stablegate_common.core.errors import Conflict, InvalidRequest
from stablegate_common.db import Database
from stablegate_dashboard.settings import DashboardConfig, DashboardSettings
from stablegate_dashboard.users.models import OpsUser
from stablegate_dashboard.users.pages import safe_next
from stablegate_dashboard.users.service import create_user
from tests.dashboard.conftest import GATEWAY_KEY, UserFactory
from tests.dashboard.support import (
    PASSWORD,
    FakeGateway,
    csrf_of,
    deliver,
    delivery,
    endpoint,
    page_token,
    sign_in,
)
from tests.reconciler.factories import intent_event

SignedIn = Callable[[str], Awaitable[httpx.AsyncClient]]


async def test_a_user_is_stored_with_an_argon2id_hash_only(dashboard_db: Database) -> None:
    async with dashboard_db.transaction() as session:
        user = await create_user(
            session, email=" Ops@Example.COM ", password=PASSWORD, role="viewer"
        )
    async with dashboard_db.sessions() as session:
        stored = await session.scalar(select(OpsUser).where(OpsUser.id == user.id))
    assert stored is not None
    assert stored.email == "ops@example.com"
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash


@pytest.mark.parametrize(
    ("email", "password", "role", "param"),
    [
        ("not-an-email", PASSWORD, "admin", "email"),
        ("ops@example.com", "short", "admin", "password"),
        ("ops@example.com", PASSWORD, "root", "role"),
    ],
)
async def test_bad_user_input_is_refused_naming_the_field(
    dashboard_db: Database, email: str, password: str, role: str, param: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        async with dashboard_db.transaction() as session:
            await create_user(session, email=email, password=password, role=role)
    assert refused.value.param == param


async def test_an_email_is_taken_once(dashboard_db: Database, user_factory: UserFactory) -> None:
    await user_factory("admin", email="ops@example.com")
    with pytest.raises(Conflict):
        await user_factory("viewer", email="OPS@example.com")


async def test_login_sets_an_httponly_samesite_cookie_and_opens_the_pages(
    anonymous: httpx.AsyncClient, user_factory: UserFactory
) -> None:
    email = await user_factory("admin")
    response = await sign_in(anonymous, email)

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("sg_session="))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "secure" not in flags  # plain http, cookie_secure=auto
    overview = await anonymous.get("/")
    assert overview.status_code == 200
    assert email in overview.text


@pytest.mark.parametrize("dashboard_config", [{"cookie_secure": "always"}], indirect=True)
async def test_the_cookie_is_secure_when_configured(
    dashboard_app: FastAPI, user_factory: UserFactory
) -> None:
    transport = httpx.ASGITransport(app=dashboard_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://dashboard") as client:
        response = await sign_in(client, await user_factory("viewer"))
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("sg_session="))
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


@pytest.mark.parametrize(
    ("email", "password"), [("known", "wrong password!!"), ("nobody@ops.example", PASSWORD)]
)
async def test_a_wrong_password_or_unknown_email_gets_the_same_refusal(
    anonymous: httpx.AsyncClient, user_factory: UserFactory, email: str, password: str
) -> None:
    known = await user_factory("admin")
    response = await sign_in(anonymous, known if email == "known" else email, password)

    assert response.status_code == 401
    assert "The email or password is wrong" in response.text
    assert "sg_session=" not in response.headers.get("set-cookie", "")
    assert (await anonymous.get("/")).status_code == 303


async def test_the_login_form_without_its_token_is_refused(
    anonymous: httpx.AsyncClient, user_factory: UserFactory
) -> None:
    email = await user_factory("admin")
    await anonymous.get("/login")  # the double-submit cookie is set, but the field is missing

    response = await anonymous.post("/login", data={"email": email, "password": PASSWORD})

    assert response.status_code == 403
    assert (await anonymous.get("/")).status_code == 303


async def test_logout_ends_the_session_even_for_a_copied_cookie(
    signed_in: SignedIn, anonymous: httpx.AsyncClient
) -> None:
    admin = await signed_in("admin")
    stolen = admin.cookies.get("sg_session")
    assert stolen

    response = await admin.post("/logout", data={"csrf_token": await page_token(admin)})

    assert response.status_code == 303
    anonymous.cookies.set("sg_session", stolen)
    assert (await anonymous.get("/intents")).status_code == 303
    assert (await admin.get("/intents")).status_code == 303


async def test_a_disabled_user_is_signed_out_at_once(
    signed_in: SignedIn, dashboard_db: Database
) -> None:
    viewer = await signed_in("viewer")
    assert (await viewer.get("/")).status_code == 200
    async with dashboard_db.transaction() as session:
        await session.execute(update(OpsUser).values(disabled_at=OpsUser.created_at))
    assert (await viewer.get("/")).status_code == 303


async def test_a_forged_session_token_is_refused(
    signed_in: SignedIn, anonymous: httpx.AsyncClient
) -> None:
    admin = await signed_in("admin")
    claims = jwt.get_unverified_claims(admin.cookies["sg_session"])
    forged = jwt.encode(claims, "another-secret-0123456789abcdef-0123456", algorithm="HS256")
    anonymous.cookies.set("sg_session", forged)
    assert (await anonymous.get("/")).status_code == 303
    unsigned = jwt.encode(claims, "", algorithm="HS256").rsplit(".", 1)[0] + "."
    anonymous.cookies.set("sg_session", unsigned)
    assert (await anonymous.get("/")).status_code == 303


async def test_the_json_api_answers_401_without_a_session(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/api/intents")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "login_required"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/intents?status=paid", "/intents?status=paid"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\t/evil.example", "/"),
        ("/\\evil.example", "/"),
        (None, "/"),
    ],
)
def test_the_login_only_returns_to_a_path_of_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


# -- CSRF and roles on every action ---------------------------------------------------

ACTIONS = ("/logout", "/intents/pi_1/cancel", "/webhooks/deliveries/whd_1/redeliver")


@pytest.mark.parametrize("path", ACTIONS)
@pytest.mark.parametrize("token", [None, "forged-token"])
async def test_every_form_is_refused_without_the_session_token(
    signed_in: SignedIn, fake_gateway: FakeGateway, path: str, token: str | None
) -> None:
    admin = await signed_in("admin")
    data = {} if token is None else {"csrf_token": token}

    response = await admin.post(path, data=data)

    assert response.status_code == 403
    assert fake_gateway.posts() == []
    assert (await admin.get("/")).status_code == 200  # still signed in: logout was refused too


async def test_another_sessions_token_does_not_work(
    signed_in: SignedIn, fake_gateway: FakeGateway
) -> None:
    first, second = await signed_in("admin"), await signed_in("admin")
    response = await first.post(ACTIONS[2], data={"csrf_token": await page_token(second)})
    assert response.status_code == 403
    assert fake_gateway.posts() == []


def failing_delivery(gateway: FakeGateway) -> dict[str, Any]:
    """One endpoint on the stand-in gateway with one failed delivery; that delivery."""
    hook, failed = endpoint(), delivery("failed")
    gateway.endpoints.append(hook)
    gateway.deliveries[hook["id"]] = [failed]
    return failed


async def test_a_viewer_sees_no_redeliver_button_and_cannot_post_one(
    signed_in: SignedIn, fake_gateway: FakeGateway
) -> None:
    failed = failing_delivery(fake_gateway)
    viewer, admin = await signed_in("viewer"), await signed_in("admin")

    assert 'data-action="redeliver"' not in (await viewer.get("/webhooks")).text
    assert 'data-action="redeliver"' in (await admin.get("/webhooks")).text
    response = await viewer.post(
        f"/webhooks/deliveries/{failed['id']}/redeliver",
        data={"csrf_token": await page_token(viewer, "/webhooks")},
    )

    assert response.status_code == 403
    assert "viewer" in response.text
    assert fake_gateway.posts() == []


async def test_an_admin_redelivers_through_the_gateway_api(
    signed_in: SignedIn, fake_gateway: FakeGateway
) -> None:
    failed = failing_delivery(fake_gateway)
    admin = await signed_in("admin")
    page = (await admin.get("/webhooks")).text
    form = page.split(f'action="/webhooks/deliveries/{failed["id"]}/redeliver"')[1]

    response = await admin.post(
        f"/webhooks/deliveries/{failed['id']}/redeliver",
        data={
            "csrf_token": csrf_of(form),
            "action_key": form.split('name="action_key" value="')[1].split('"')[0],
        },
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/webhooks?notice=redelivered"
    [sent] = fake_gateway.posts()
    assert sent.url.path == f"/v1/webhook_deliveries/{failed['id']}/redeliver"
    assert sent.headers["authorization"] == f"Bearer {GATEWAY_KEY}"
    assert sent.headers["idempotency-key"].startswith("dashboard-redeliver-")
    shown = await admin.get(response.headers["location"])
    assert "queued again" in shown.text


async def test_a_refused_cancel_says_why_without_echoing_the_url(
    signed_in: SignedIn, fake_gateway: FakeGateway, dashboard_db: Database
) -> None:
    created = intent_event(sequence=1, created=True)
    await deliver(dashboard_db, created)
    intent_id = created.data["intent_id"]
    admin = await signed_in("admin")
    token = await page_token(admin, f"/intents/{intent_id}")
    fake_gateway.refuse = (409, "invalid_state")

    response = await admin.post(f"/intents/{intent_id}/cancel", data={"csrf_token": token})

    assert response.status_code == 303
    assert response.headers["location"] == f"/intents/{intent_id}?failed=invalid_state"
    assert fake_gateway.posts()[0].url.path == f"/v1/payment_intents/{intent_id}/cancel"
    page = await admin.get(response.headers["location"])
    assert "no longer in a state that allows this" in page.text
    crafted = await admin.get(f"/intents/{intent_id}", params={"failed": "<b>call us</b>"})
    assert "call us" not in crafted.text


@pytest.mark.parametrize("dashboard_config", [{"gateway_api_key": SecretStr("")}], indirect=True)
async def test_without_a_gateway_key_the_webhook_page_says_so(signed_in: SignedIn) -> None:
    page = await (await signed_in("admin")).get("/webhooks")
    assert page.status_code == 200
    assert "DASHBOARD_GATEWAY_API_KEY is not set" in page.text


def test_production_refuses_the_placeholder_secret() -> None:
    with pytest.raises(ValidationError, match="DASHBOARD_JWT_SECRET"):
        DashboardSettings(environment="production")
    with pytest.raises(ValidationError, match="DASHBOARD_COOKIE_SECURE"):
        DashboardSettings(
            environment="production",
            dashboard=DashboardConfig(jwt_secret=SecretStr("x" * 40), cookie_secure="never"),
        )
    DashboardSettings(
        environment="production", dashboard=DashboardConfig(jwt_secret=SecretStr("x" * 40))
    )
