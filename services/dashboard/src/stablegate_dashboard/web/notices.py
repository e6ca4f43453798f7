"""The one-line outcome shown after an action redirects back (post/redirect/get).

Only a short code travels in the URL, and only the texts below are shown for it: a
crafted link can never make the dashboard display words of an attacker's choosing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Request

_CODE = re.compile(r"^[a-z0-9_]{1,64}$")

NOTICES = {
    "canceled": "The payment intent was canceled.",
    "redelivered": "The webhook delivery was queued again; its result appears below shortly.",
    "sweep_planned": "A sweep was planned. Check its totals and cost, then download its "
    "signing request and sign it with stablegate-signer.",
    "sweep_nothing": "Nothing was planned: no address holds enough to sweep, or a signing "
    "round is still in flight on the network.",
    "signed_accepted": "The signed file was accepted: every transaction matched the request. "
    "They are broadcast in order as their dependencies are mined.",
    "disbursements_planned": "Refunds and payouts were planned into a signing round. Check "
    "it, then download its signing request and sign it with stablegate-signer.",
    "disbursements_nothing": "Nothing was planned: no pending refund or payout is approved "
    "and ready, or a signing round is still in flight on the network.",
    "approval_recorded": "Your approval was recorded. A second admin must approve before it "
    "can be planned.",
    "approval_complete": "Your approval was recorded: two admins approved, so it is planned "
    "with the next round.",
    "batch_canceled": "The batch was canceled: none of its transfers not yet broadcast will be.",
}
FAILURES = {
    "gateway_not_configured": "DASHBOARD_GATEWAY_API_KEY is not set: the dashboard cannot act.",
    "gateway_unavailable": "The gateway did not answer. Nothing was changed; try again.",
    "resource_missing": "The gateway does not know this object (or the dashboard's key "
    "belongs to another merchant).",
    "invalid_state": "The gateway refused: the object is no longer in a state that allows this.",
}


@dataclass(frozen=True)
class Notice:
    tone: str  # success | danger
    text: str


def outcome_url(path: str, *, notice: str | None = None, failed: str | None = None) -> str:
    query = {k: v for k, v in (("notice", notice), ("failed", failed)) if v}
    return f"{path}?{urlencode(query)}" if query else path


def notice_of(request: Request) -> Notice | None:
    notice = request.query_params.get("notice", "")
    if notice in NOTICES:
        return Notice("success", NOTICES[notice])
    failed = request.query_params.get("failed", "")
    if _CODE.match(failed):
        text = FAILURES.get(failed, f"The gateway refused the request ({failed}).")
        return Notice("danger", text)
    return None
