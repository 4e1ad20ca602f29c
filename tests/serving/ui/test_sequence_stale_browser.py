"""A stale tab's sequencing in Debian's Chromium: another tab decided a code after this page loaded, so
"p" (make principal) is answered 409 `stale_item`; the page says so with a reload button, the stored order
is unchanged, and after the reload the same key is accepted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import LiveServer, encounter_payload
from .test_browser import _card, _sign_in

pytestmark = pytest.mark.browser


def test_a_stale_tab_cannot_resequence_and_is_offered_a_reload(live_server: LiveServer, page: Any) -> None:
    api = httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {live_server.keys['coder']}"}, timeout=30
    )
    with httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {live_server.keys['integration']}"}
    ) as integration:
        submitted = integration.post(
            "/v1/encounters", params={"route": "review"}, json=encounter_payload("enc-stale-seq")
        )
    assert submitted.status_code in (200, 201), submitted.text
    _sign_in(page, live_server)
    page.get_by_role("button", name="Claim next item").click()
    page.wait_for_url("**/ui/review/*")
    item_id = int(page.url.rstrip("/").split("/")[-1])
    page.wait_for_function(
        "() => document.activeElement?.closest('.code-card')?.dataset.status === 'pending'"
    )
    first, second = page.locator(".code-card").evaluate_all("els => els.map(e => e.dataset.code)")[:2]

    # another tab of the same coder rejects the first code: this page's version is now stale
    other_tab = api.post(
        f"/v1/review/items/{item_id}/decisions",
        json={"decisions": [{"code": first, "action": "reject", "reason": "not documented"}]},
    )
    assert other_tab.status_code == 200, other_tab.text

    page.keyboard.press("j")
    page.keyboard.press("p")  # make the second code principal
    page.locator("#message").filter(has_text="changed since this page loaded").wait_for()
    assert page.locator("#message-reload").is_visible()
    assert api.get(f"/v1/review/items/{item_id}").json()["sequence"] is None, "a stale order was stored"

    page.locator("#message-reload").click()
    page.wait_for_function(
        "(code) => document.querySelector(`.code-card[data-code='${code}']`)?.dataset.status === 'rejected'",
        arg=first,
    )
    _card(page, second).click()
    page.keyboard.press("p")
    page.locator("#message").filter(has_text="principal diagnosis").wait_for()
    stored = api.get(f"/v1/review/items/{item_id}").json()["sequence"]
    assert stored is not None and stored[0].endswith(second.replace(".", ""))
    api.close()
