"""The coder's flow in Debian's Chromium: the grouped table view with principal/secondary and key
sequencing, "accept all at or above X%", "finalize and next", the compact queue with a chosen claim, the
lease that renews while the coder works and disables Finalize when it runs out, a superseded item that
links to its new revision, and a 20-code encounter finished by keyboard alone in at most 40 key presses.

Screenshots of the queue and an encounter at 1440x900 and 1280x720 go to docs/screenshots/ (README).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeCoder, Rule

from .conftest import PROBLEM_NOTE, LiveServer, serve
from .test_browser import _CONTRAST_JS, _UNLABELLED_JS, _card, _sign_in

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
MAX_SCREENSHOT_BYTES = 300_000

# twenty conditions, ten of them at or above 90%; valid billable ICD-10-CM codes with no rule conflict
TWENTY = [
    ("essential hypertension", "I10", 0.97, "Essential (primary) hypertension"),
    ("hyperlipidemia", "E78.5", 0.96, "Hyperlipidemia, unspecified"),
    ("reflux disease", "K21.9", 0.95, "Gastro-esophageal reflux disease without esophagitis"),
    ("hypothyroidism", "E03.9", 0.94, "Hypothyroidism, unspecified"),
    ("sleep apnea", "G47.33", 0.93, "Obstructive sleep apnea (adult) (pediatric)"),
    ("generalized anxiety", "F41.1", 0.92, "Generalized anxiety disorder"),
    ("osteoporosis", "M81.0", 0.92, "Age-related osteoporosis without current pathological fracture"),
    ("psoriasis", "L40.0", 0.91, "Psoriasis vulgaris"),
    ("vitamin d deficiency", "E55.9", 0.90, "Vitamin D deficiency, unspecified"),
    ("asthma", "J45.909", 0.90, "Unspecified asthma, uncomplicated"),
    ("obesity", "E66.9", 0.86, "Obesity, unspecified"),
    ("depression", "F32.A", 0.84, "Depression, unspecified"),
    ("low back pain", "M54.50", 0.81, "Low back pain, unspecified"),
    ("urinary tract infection", "N39.0", 0.77, "Urinary tract infection, site not specified"),
    ("constipation", "K59.00", 0.74, "Constipation, unspecified"),
    ("migraine", "G43.909", 0.70, "Migraine, unspecified, not intractable, without status migrainosus"),
    ("allergic rhinitis", "J30.9", 0.66, "Allergic rhinitis, unspecified"),
    ("anemia", "D64.9", 0.61, "Anemia, unspecified"),
    ("fatty liver", "K76.0", 0.57, "Fatty (change of) liver, not elsewhere classified"),
    ("headache", "R51.9", 0.52, "Headache, unspecified"),
]
TWENTY_NOTE = (
    "HISTORY OF PRESENT ILLNESS: 67-year-old woman seen for follow-up of her chronic conditions.\n\n"
    "ASSESSMENT AND PLAN:\n"
    + "".join(f"- {phrase.capitalize()}, stable on current treatment.\n" for phrase, *_ in TWENTY)
)
REJECTED = {"K59.00", "R51.9"}


def _twenty_coder() -> FakeCoder:
    rules = tuple(Rule(phrase, code, conf, description=title) for phrase, code, conf, title in TWENTY)
    return FakeCoder(rules=rules, version="ui-flow-coder-1", auto_accept=None)


@pytest.fixture
def twenty_server(tmp_path: Path, ui_pipeline: Any) -> Iterator[LiveServer]:
    with serve(tmp_path, _twenty_coder()) as server:
        yield server


def _focused_card(page: Any) -> str | None:
    return page.evaluate("() => document.activeElement?.closest('.code-card')?.dataset.code ?? null")


def _wait_focus_on_pending(page: Any) -> str:
    page.wait_for_function(
        "() => document.activeElement?.closest('.code-card')?.dataset.status === 'pending'"
    )
    code = _focused_card(page)
    assert code is not None
    return code


def _screenshot(page: Any, name: str) -> None:
    """A PNG of the viewport in docs/screenshots/, reduced to a 256-colour palette (Pillow comes with
    matplotlib) so that it stays small enough to commit."""
    from PIL import Image

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    with Image.open(path) as shot:
        reduced = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    reduced.save(path, optimize=True)
    assert path.stat().st_size < MAX_SCREENSHOT_BYTES, f"{name} is {path.stat().st_size} bytes"


def _check_accessibility(page: Any) -> None:
    """Every visible control is labelled, text meets WCAG AA contrast, nothing scrolls sideways."""
    assert page.evaluate(_UNLABELLED_JS) == [], "unlabelled controls"
    assert page.evaluate(_CONTRAST_JS) == [], "text below WCAG AA contrast"
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], "the page scrolls sideways"


def _item_of(page: Any) -> int:
    return int(page.url.rstrip("/").split("/")[-1])


class Keys:
    """Presses keys on the page and counts them."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.count = 0

    def press(self, key: str) -> None:
        self.count += 1
        self.page.keyboard.press(key)


# -- 1. table view, sequencing ----------------------------------------------------------------------


def test_table_view_groups_codes_and_key_sequencing_is_kept_by_finalize(
    live_server: LiveServer, page: Any
) -> None:
    encounter_id = "enc-ui-seq"
    live_server.submit(encounter_id, date="2026-11-30")
    _sign_in(page, live_server)
    page.get_by_role("button", name="Claim next item").click()
    page.wait_for_url("**/ui/review/*")
    item_id = _item_of(page)
    order = lambda: page.locator(".code-card").evaluate_all("els => els.map(e => e.dataset.code)")  # noqa: E731
    # the cards arrive after the page loads: wait for them (focus on the first undecided) before reading
    focused = _wait_focus_on_pending(page)
    first, second = order()[:2]
    assert focused == first, "focus lands on the first undecided code"
    assert "67 y · female · outpatient · 2026-11-30" in page.locator("#enc-patient").inner_text()

    # the grouped table view: one line per code, principal / secondary labels
    page.keyboard.press("t")
    page.wait_for_selector("#code-list.table")
    assert page.locator("#view-toggle").get_attribute("aria-pressed") == "true"
    assert page.locator(".code-group h3").first.text_content() == "Diagnoses (4)"
    heights = page.locator(".code-card:not(.selected)").evaluate_all("els => els.map(e => e.offsetHeight)")
    assert heights and max(heights) <= 44, f"table rows are one line: {heights}"
    assert "principal" in _card(page, first).locator(".seq").inner_text()
    assert "secondary" in _card(page, second).locator(".seq").inner_text()
    assert _focused_card(page) == first, "focus stays on the card after switching views"

    # "p" makes the second code principal; "]" then Alt+ArrowUp move another code down and back up
    page.keyboard.press("j")
    assert _focused_card(page) == second
    page.keyboard.press("p")
    page.wait_for_function(
        "(code) => document.querySelector('.seq.principal')?.closest('.code-card')?.dataset.code === code",
        arg=second,
    )
    assert _focused_card(page) == second, "focus follows the moved code"
    assert order()[:2] == [second, first]
    page.wait_for_selector("#busy", state="hidden")
    page.keyboard.press("j")
    page.keyboard.press("j")
    moving = _focused_card(page)
    page.keyboard.press("]")
    page.wait_for_selector("#busy", state="hidden")
    assert order().index(moving) == 3
    page.keyboard.press("Alt+ArrowUp")
    page.wait_for_selector("#busy", state="hidden")
    assert order().index(moving) == 2
    assert _focused_card(page) == moving
    shown = order()

    # the order is stored: a reload shows it again
    page.reload()
    page.locator(".code-card").first.wait_for()
    _wait_focus_on_pending(page)
    assert order() == shown
    assert "principal" in _card(page, second).locator(".seq").inner_text()

    # accept everything at or above 50% (recorded as such), reject the rest, finalize
    page.locator("#bulk-threshold").fill("50")
    page.locator("#bulk-threshold").press("Enter")
    page.wait_for_selector('.code-card[data-code="E78.5"][data-status="accepted"]')
    page.locator("#message").filter(has_text="recorded as a bulk acceptance").wait_for()
    assert _card(page, "E66.9").get_attribute("data-status") == "pending", "41% stays undecided"
    assert _focused_card(page) == "E66.9", "focus moves to the code still undecided"
    page.keyboard.press("r")
    page.keyboard.press("Enter")
    page.wait_for_selector('.code-card[data-code="E66.9"][data-status="rejected"]')
    page.keyboard.press("f")
    page.locator("#final-codes").wait_for()
    assert page.locator("#final-codes").inner_text().startswith(f"{second}, {first}")

    with live_server.api("integration") as client:
        final = client.get(f"/v1/encounters/{encounter_id}").json()["final_codes"]
    assert [c["code"] for c in final] == [c for c in shown if c != "E66.9"]
    with live_server.api("admin") as client:
        events = client.get("/v1/audit", params={"encounter_id": encounter_id, "limit": 500}).json()["events"]
    finalized = next(e for e in events if e["action"] == "review.finalized")
    assert finalized["after"]["principal"] == f"ICD-10-CM:{second}"
    bulk = [e for e in events if e["action"] == "review.decision.accept"]
    assert bulk and all(e["after"]["reason"] == "accepted in bulk: confidence at or above 50%" for e in bulk)
    with live_server.api("coder") as client:
        stored = client.get(f"/v1/review/items/{item_id}").json()["sequence"]
    assert stored[0] == "ICD-10-CM|" + second.replace(".", "")


# -- 3. compact queue, claim a chosen item ---------------------------------------------------------


def test_compact_queue_shows_fifteen_rows_and_claims_a_chosen_item_by_keyboard(
    live_server: LiveServer, page: Any
) -> None:
    for n in range(18):
        live_server.submit(f"enc-q-{n:02d}")
    page.set_viewport_size({"width": 1440, "height": 900})
    _sign_in(page, live_server)
    page.locator("#queue-body tr").nth(17).wait_for()
    row = page.locator("#queue-body tr").first
    reasons = row.locator("td.reasons").inner_text()
    assert reasons.startswith("low confidence: ") and "E66.9" in reasons, reasons
    assert "forced review" in reasons, reasons
    assert row.locator(".badge.reason").count() == 0, "reasons are one summary line, not a chip per code"
    above = page.locator("#queue-body tr").evaluate_all(
        "rows => rows.filter(r => r.getBoundingClientRect().bottom <= window.innerHeight).length"
    )
    assert above >= 15, f"only {above} rows above the fold at 1440x900"
    _check_accessibility(page)
    _screenshot(page, "queue-1440x900.png")
    page.set_viewport_size({"width": 1280, "height": 720})
    _check_accessibility(page)
    _screenshot(page, "queue-1280x720.png")

    # j j moves to the third row's claim button; c claims that item (not the first in the queue)
    chosen = page.locator("#queue-body tr").nth(2).get_attribute("data-item-id")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.evaluate("() => document.activeElement.closest('tr').dataset.itemId") == chosen
    # a refresh keeps the focus on the same item; the status line already says "18 of 18" before it, so
    # mark the rows and wait for the refresh to replace them
    page.locator("#queue-body tr").evaluate_all("rows => rows.forEach(r => { r.dataset.stale = '1'; })")
    page.keyboard.press("r")
    page.wait_for_function(
        "() => document.querySelectorAll('#queue-body tr').length === 18"
        " && !document.querySelector('#queue-body tr[data-stale]')"
    )
    page.locator("#status").filter(has_text="18 of 18 items shown").wait_for()
    page.wait_for_function("(id) => document.activeElement?.closest('tr')?.dataset.itemId === id", arg=chosen)
    page.keyboard.press("c")
    page.wait_for_url(f"**/ui/review/{chosen}")
    _wait_focus_on_pending(page)
    assert page.locator("#finalize").is_visible()

    # an item another coder holds cannot be claimed from the queue
    with live_server.api("admin") as client:
        held = client.post("/v1/review/claim").json()
    page.goto(f"{live_server.url}/ui/queue")
    held_row = page.locator(f'#queue-body tr[data-item-id="{held["item_id"]}"]')
    held_row.wait_for()
    assert held_row.locator("button.claim").count() == 0
    assert "claimed" in held_row.inner_text()


# -- 4. lease -----------------------------------------------------------------------------------------


@pytest.fixture
def short_lease_server(tmp_path: Path, ui_pipeline: Any) -> Iterator[LiveServer]:
    from .conftest import note_coder

    with serve(tmp_path, note_coder(), review_lease_seconds=12) as server:
        yield server


def test_lease_renews_while_the_coder_works_and_expiry_disables_finalize(
    short_lease_server: LiveServer, page: Any
) -> None:
    server = short_lease_server
    server.submit("enc-ui-lease")
    _sign_in(page, server)
    page.get_by_role("button", name="Claim next item").click()
    page.wait_for_url("**/ui/review/*")
    item_id = _item_of(page)
    _wait_focus_on_pending(page)
    assert page.locator("#lease-until").inner_text().endswith("left")

    def expires() -> str:
        with server.api("coder") as client:
            return str(client.get(f"/v1/review/items/{item_id}").json()["lease_expires_at"])

    before = expires()
    # the page has not renewed yet, so the first key renews at once; the pause makes the renewed expiry
    # clearly later while leaving most of the 12 s lease for a slow page load before it
    time.sleep(1.5)
    page.keyboard.press("j")  # activity without a decision
    deadline = time.monotonic() + 10
    while expires() == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert expires() > before, "a key press renewed the lease"

    # no more activity: the lease runs out, the page says so and Finalize is disabled at once
    page.locator("#message").filter(has_text="lease on this item has expired").wait_for(timeout=30_000)
    assert page.locator("#finalize").is_disabled()
    assert page.locator("#finalize-next").is_disabled()
    assert page.locator("#lease-until").inner_text() == "expired"
    assert page.locator(".code-card .actions").count() == 0
    page.keyboard.press("f")
    page.locator("#message").filter(has_text="claim it again before finalizing").wait_for()
    page.get_by_role("button", name="Claim it again").click()
    page.wait_for_function("() => !document.getElementById('finalize').disabled")
    assert page.locator("#lease-until").inner_text().endswith("left")


# -- 5. superseded item ----------------------------------------------------------------------------------


def test_superseded_item_links_to_the_new_revision_with_decisions_carried(
    live_server: LiveServer, page: Any
) -> None:
    from .conftest import NOTE

    encounter_id = "enc-ui-super"
    live_server.submit(encounter_id)
    _sign_in(page, live_server)
    page.get_by_role("button", name="Claim next item").click()
    page.wait_for_url("**/ui/review/*")
    old_item = _item_of(page)
    accepted = _wait_focus_on_pending(page)
    assert accepted != "E66.9"
    page.keyboard.press("a")
    page.wait_for_selector(f'.code-card[data-code="{accepted}"][data-status="accepted"]')
    _card(page, "E66.9").get_by_role("button", name="Reject E66.9").click()
    _card(page, "E66.9").get_by_role("button", name="Reject", exact=True).click()
    page.wait_for_selector('.code-card[data-code="E66.9"][data-status="rejected"]')

    # the EHR sends a new revision: obesity is gone from the note, the rest stays
    live_server.submit(encounter_id, NOTE.replace(" Obesity.", " Weight stable."))
    page.reload()
    link = page.get_by_role("link", name="Open the new revision")
    link.wait_for()
    assert "superseded" in page.locator("#final-box").inner_text()
    new_item = link.get_attribute("href")
    assert new_item and new_item != f"/ui/review/{old_item}"
    link.click()
    # the old page's URL matches "/ui/review/*" too: wait for the new revision's own URL
    page.wait_for_url(f"**{new_item}")
    _card(page, accepted).wait_for()
    assert _card(page, accepted).get_attribute("data-status") == "accepted", "the acceptance carried over"
    assert _card(page, "E66.9").count() == 0
    undecided = [c for c in ("E11.22", "I10", "E78.5") if c != accepted]
    assert [_card(page, c).get_attribute("data-status") for c in undecided] == ["pending", "pending"]


# -- 2 + 6. the 40-keypress test: claim to "finalize and next" by keyboard alone --------------------------


def test_twenty_code_encounter_by_keyboard_in_at_most_forty_presses(
    twenty_server: LiveServer, page: Any
) -> None:
    twenty_server.submit("enc-twenty", TWENTY_NOTE, date="2026-11-28")
    twenty_server.submit("enc-after", "ASSESSMENT AND PLAN: Essential hypertension. Asthma.\n")
    page.set_viewport_size({"width": 1440, "height": 900})
    _sign_in(page, twenty_server)
    page.locator('#queue-body tr[data-encounter-id="enc-twenty"]').wait_for()
    keys = Keys(page)

    keys.press("n")  # claim the next item (the 20-code encounter is served first: lowest confidence)
    page.wait_for_url("**/ui/review/*")
    item_id = _item_of(page)
    page.locator(".code-card").nth(19).wait_for()
    _wait_focus_on_pending(page)
    assert page.locator(".code-card").count() == 20

    keys.press("t")  # the table view
    keys.press("Shift+A")  # accept the ten codes at or above 90%, recorded as a bulk acceptance
    page.wait_for_function(
        "() => document.querySelectorAll('.code-card[data-status=\"accepted\"]').length === 10"
    )
    _screenshot(page, "encounter-1440x900.png")
    page.set_viewport_size({"width": 1280, "height": 720})
    _check_accessibility(page)
    _screenshot(page, "encounter-1280x720.png")

    for _ in range(10):
        code = _wait_focus_on_pending(page)
        if code in REJECTED:
            keys.press("r")
            keys.press("Enter")  # the first reason: not supported by the documentation
            page.wait_for_selector(f'.code-card[data-code="{code}"][data-status="rejected"]')
        else:
            keys.press("a")
            page.wait_for_selector(f'.code-card[data-code="{code}"][data-status="accepted"]')
    assert page.locator('.code-card[data-status="pending"]').count() == 0

    keys.press("Shift+F")  # finalize and claim the next item
    page.wait_for_url(lambda url: url.rstrip("/").split("/")[-1] != str(item_id) and "/ui/review/" in url)
    next_code = _wait_focus_on_pending(page)
    assert next_code == "I10", "focus lands on the next item's first undecided code"
    assert keys.count <= 40, f"{keys.count} key presses"

    with twenty_server.api("coder") as client:
        item = client.get(f"/v1/review/items/{item_id}").json()
    assert item["status"] == "final"
    assert {c["status"] for c in item["codes"]} == {"accepted", "rejected"}, "every code was decided"
    with twenty_server.api("admin") as client:
        events = client.get("/v1/audit", params={"encounter_id": "enc-twenty", "limit": 500}).json()["events"]
    finalized = next(e for e in events if e["action"] == "review.finalized")
    assert finalized["after"]["accepted_undecided"] == [], "nothing was accepted without a decision"
    assert len(finalized["after"]["final_codes"]) == 18
    bulk = [
        e
        for e in events
        if (e["after"] or {}).get("reason") == "accepted in bulk: confidence at or above 90%"
    ]
    assert len(bulk) == 10


# -- reflow at 200% zoom ----------------------------------------------------------------------------------


def test_pages_reflow_at_200_percent_zoom_and_focus_follows_each_action(
    live_server: LiveServer, page: Any
) -> None:
    """1440x900 at 200% zoom is a 720x450 CSS viewport: nothing scrolls sideways, the note keeps most of the
    width (the panes stack), and focus stays on a card after each keyboard action."""
    live_server.submit("enc-ui-zoom")
    page.set_viewport_size({"width": 720, "height": 450})
    _sign_in(page, live_server)
    page.locator("#queue-body tr").first.wait_for()
    _check_accessibility(page)
    page.keyboard.press("j")
    page.keyboard.press("c")
    page.wait_for_url("**/ui/review/*")
    first = _wait_focus_on_pending(page)
    _check_accessibility(page)
    note_width = page.locator(".note-pane").evaluate("el => el.getBoundingClientRect().width")
    assert note_width >= 600, f"the note pane is {note_width} px wide at 200% zoom"

    page.keyboard.press("a")
    page.wait_for_selector(f'.code-card[data-code="{first}"][data-status="accepted"]')
    after_accept = _wait_focus_on_pending(page)
    assert after_accept != first
    page.keyboard.press("t")
    page.wait_for_selector("#code-list.table")
    assert _focused_card(page) == after_accept, "focus stays after switching to the table view"
    page.keyboard.press("]")
    page.wait_for_selector("#busy", state="hidden")
    assert _focused_card(page) == after_accept, "focus follows a moved code"
    page.keyboard.press("r")
    assert page.evaluate("() => document.activeElement.tagName") == "SELECT", "focus in the reject form"
    page.keyboard.press("Escape")
    assert _focused_card(page) == after_accept, "focus returns to the card when the form closes"
    _check_accessibility(page)

    # Shift+F with codes undecided asks first; pressed again it finalizes, and the empty queue says so
    page.keyboard.press("Shift+F")
    page.locator("#message").filter(has_text="press Shift+F again").wait_for()
    page.keyboard.press("Shift+F")
    page.locator("#message").filter(has_text="The queue is empty").wait_for()
    with live_server.api("integration") as client:
        assert client.get("/v1/encounters/enc-ui-zoom").json()["status"] == "final"


# -- finalize and next through a refused finalize --------------------------------------------------------


def test_finalize_and_next_goes_on_after_the_problems_are_overridden(
    problem_server: LiveServer, page: Any
) -> None:
    problem_server.submit("enc-ui-blocked", PROBLEM_NOTE)
    problem_server.submit("enc-ui-following", "ASSESSMENT AND PLAN: Essential hypertension.\n")
    _sign_in(page, problem_server)
    page.locator('#queue-body tr[data-encounter-id="enc-ui-blocked"]').wait_for()
    page.keyboard.press("n")
    page.wait_for_url("**/ui/review/*")
    blocked_item = _item_of(page)
    # the header is filled in once the item's API answer arrives, after the page has loaded
    page.wait_for_function("() => document.getElementById('enc-id')?.textContent")
    assert page.locator("#enc-id").inner_text() == "enc-ui-blocked"
    for _ in range(4):
        code = _wait_focus_on_pending(page)
        if code == "0TTB":  # an incomplete ICD-10-PCS code cannot be overridden: reject it
            page.keyboard.press("r")
            page.keyboard.press("Enter")
        else:
            page.keyboard.press("a")
        page.wait_for_selector(f'.code-card[data-code="{code}"]:not([data-status="pending"])')

    page.keyboard.press("Shift+F")  # refused: the Excludes1 pair R32 + N39.41
    problems = page.locator("#problems-box")
    problems.get_by_label("Reason to override").wait_for()
    assert "R32 + N39.41" in problems.inner_text()
    assert page.evaluate("() => document.activeElement.id") == "problems-box", "focus moves to the problems"
    problems.get_by_label("Reason to override").fill("stress and urge components documented by urology")
    problems.get_by_role("button", name="Finalize with these reasons").click()
    page.wait_for_url(
        lambda url: url.rstrip("/").split("/")[-1] != str(blocked_item) and "/ui/review/" in url
    )
    page.locator("#enc-id").filter(has_text="enc-ui-following").wait_for()
    assert _wait_focus_on_pending(page) == "I10"
    with problem_server.api("coder") as client:
        assert client.get(f"/v1/review/items/{blocked_item}").json()["status"] == "final"
