"""End to end in Debian's Chromium: sign in, claim, accept, reject, replace via search, add a code from
selected text, finalize; then the API shows the final codes and the audit log shows every step.

The app runs for real (uvicorn on 127.0.0.1, SQLite in tmp_path, a deterministic coder). Screenshots of
the queue and the encounter page at 1366x768 go to test-artifacts/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    ADD_PHRASE,
    NEGATED_PHRASE,
    NOTE,
    PROBLEM_NOTE,
    VIEWPORT,
    LiveServer,
    encounter_payload,
)

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


def _screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


_CONTRAST_JS = """() => {
  const parse = (c) => {
    const m = c && c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = ({r, g, b}) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const bgOf = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const need = (cs) => {
    const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    return size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!el.checkVisibility() || el.closest('[disabled]')) continue;
    const cs = getComputedStyle(el);
    if ([...el.childNodes].some((n) => n.nodeType === 3 && n.data.trim())) {
      const r = ratio(parse(cs.color), bgOf(el));
      if (r < need(cs)) bad.push(`${el.tagName}.${el.className} ${r.toFixed(2)}: ${el.textContent.trim().slice(0, 30)}`);
    }
    const after = getComputedStyle(el, '::after');
    if (after.content && after.content !== 'none' && after.content !== 'normal') {
      const bg = parse(after.backgroundColor);
      const r = ratio(parse(after.color), bg && bg.a > 0.5 ? bg : bgOf(el));
      if (r < need(after)) bad.push(`${el.tagName}.${el.className}::after ${r.toFixed(2)}`);
    }
  }
  return bad;
}"""

_UNLABELLED_JS = """() => [...document.querySelectorAll(
    'button, input:not([type=hidden]), select, textarea, [role=listbox], [role=meter]')]
  .filter((el) => el.checkVisibility())
  .filter((el) => {
    const by = el.getAttribute('aria-labelledby');
    const name = (el.getAttribute('aria-label') || '').trim()
      || (el.labels ? [...el.labels].map((l) => l.textContent).join('').trim() : '')
      || (by && document.getElementById(by) ? document.getElementById(by).textContent.trim() : '')
      || (el.tagName === 'BUTTON' ? el.textContent.trim() : '');
    return !name;
  })
  .map((el) => el.outerHTML.slice(0, 100))"""


def _check_accessibility(page: Any) -> None:
    """Every visible control has an accessible name and all visible text meets WCAG AA contrast."""
    assert page.evaluate(_UNLABELLED_JS) == [], "unlabelled controls"
    assert page.evaluate(_CONTRAST_JS) == [], "text below WCAG AA contrast"
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= VIEWPORT["width"], "the page scrolls sideways at 1366x768"


def _sign_in(page: Any, server: LiveServer, role: str = "coder") -> None:
    page.goto(f"{server.url}/ui/queue")
    page.wait_for_url("**/ui/signin**")
    page.get_by_label("API key").fill(server.keys[role])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/queue")


def _card(page: Any, code: str) -> Any:
    return page.locator(f'.code-card[data-code="{code}"]')


def _char_box(page: Any, offset: int) -> dict[str, float]:
    """The on-screen box of one character of the note, by its offset in the original text."""
    box = page.evaluate(
        """(pos) => {
          for (const seg of document.querySelectorAll('.note-text .seg')) {
            const a = Number(seg.dataset.start), b = Number(seg.dataset.end);
            if (a <= pos && pos < b) {
              seg.scrollIntoView({block: 'center'});
              const range = document.createRange();
              range.setStart(seg.firstChild, pos - a);
              range.setEnd(seg.firstChild, pos - a + 1);
              const r = range.getBoundingClientRect();
              return {x: r.left, y: r.top, w: r.width, h: r.height};
            }
          }
          return null;
        }""",
        offset,
    )
    assert box is not None, f"no character at offset {offset}"
    return box


def _select_text(page: Any, start: int, end: int) -> None:
    """Drag the mouse over the note from character `start` to character `end - 1`, like a coder."""
    _char_box(page, start)  # scrolls it into view
    first = _char_box(page, start)
    last = _char_box(page, end - 1)
    page.mouse.move(first["x"] + 1, first["y"] + first["h"] / 2)
    page.mouse.down()
    page.mouse.move(last["x"] + last["w"] - 1, last["y"] + last["h"] / 2, steps=8)
    page.mouse.up()


def test_coder_reviews_an_encounter_end_to_end(live_server: LiveServer, page: Any) -> None:
    encounter_id = "enc-ui-1"
    live_server.submit(encounter_id)

    # sign in, see the queue
    _sign_in(page, live_server)
    row = page.locator(f'#queue-body tr:has-text("{encounter_id}")')
    row.wait_for()
    assert "low confidence: " in row.inner_text() and "E66.9" in row.inner_text(), (
        "the queue shows the reasons"
    )
    assert "41%" in row.inner_text(), "the queue shows the lowest confidence"
    _screenshot(page, "queue.png")
    _check_accessibility(page)

    # claim the next item
    page.get_by_role("button", name="Claim next item").click()
    page.wait_for_url("**/ui/review/*")
    item_id = int(page.url.rstrip("/").split("/")[-1])
    _card(page, "E11.22").wait_for()
    assert page.locator("#model-version").inner_text() == "ui-test-coder-1"
    assert page.locator("#code-set-version").inner_text() == "ICD-10-CM 2026"
    assert page.locator(".note-text .section-head", has_text="ASSESSMENT AND PLAN:").count() == 1
    assert "Use an additional code" in _card(page, "E11.22").inner_text(), "rule warnings are shown"
    shortcuts = page.locator(".shortcuts").inner_text()
    assert shortcuts.count("finalize") == 2 and "finalize + next" in shortcuts
    page.keyboard.press("?")
    assert page.get_by_role("dialog", name="Keyboard shortcuts").is_visible()
    page.keyboard.press("Escape")
    assert not page.get_by_role("dialog", name="Keyboard shortcuts").is_visible()
    _card(page, "E11.22").locator("button.code").click()
    active = page.locator(".ev.active")
    assert active.count() >= 1
    assert "type 2 diabetes mellitus" in " ".join(active.all_inner_texts())
    _screenshot(page, "encounter.png")
    _check_accessibility(page)

    # accept E11.22 (button), then I10 (keyboard: j/k move, a accepts)
    _card(page, "E11.22").get_by_role("button", name="Accept E11.22").click()
    page.wait_for_selector('.code-card[data-code="E11.22"][data-status="accepted"]')
    page.locator("body").press("k")
    page.locator("body").press("j")
    selected = page.locator(".code-card.selected")
    assert selected.get_attribute("data-code") == "I10"
    page.keyboard.press("a")
    page.wait_for_selector('.code-card[data-code="I10"][data-status="accepted"]')

    # reject E66.9 with a reason (keyboard r opens the form)
    _card(page, "E66.9").locator("button.code").click()
    page.keyboard.press("r")
    page.get_by_label("Reason for rejecting E66.9").select_option("Not supported by the documentation")
    page.get_by_label("Details (optional)").fill("BMI not documented")
    _check_accessibility(page)
    _card(page, "E66.9").get_by_role("button", name="Reject", exact=True).click()
    page.wait_for_selector('.code-card[data-code="E66.9"][data-status="rejected"]')

    # replace E78.5 through the code search typeahead
    _card(page, "E78.5").get_by_role("button", name="Replace E78.5").click()
    page.get_by_label("Replace E78.5 with").fill("pure hypercholesterolemia")
    option = page.locator('li[role="option"][data-code="E78.00"]')
    option.wait_for()
    assert "hypercholesterolemia" in option.inner_text().lower(), "search results show titles"
    option.click()
    page.wait_for_selector('.code-card[data-code="E78.5"][data-status="replaced"]')
    _card(page, "E78.00").wait_for()

    # add N18.32 with evidence selected in the note
    start = NOTE.index(ADD_PHRASE)
    _select_text(page, start, start + len(ADD_PHRASE))
    page.locator("#selection-box").wait_for()
    assert page.locator("#selection-text").inner_text() == ADD_PHRASE
    assert (
        page.locator("#selection-range").inner_text() == f"(d1, characters {start}–{start + len(ADD_PHRASE)})"
    )
    page.get_by_role("button", name="Add a code for this text").click()
    page.get_by_label("Search codes (ICD-10-CM, ICD-10-PCS, HCPCS)").fill("kidney disease stage 3b")
    added = page.locator('#add-results li[role="option"][data-code="N18.32"]')
    added.wait_for()
    _screenshot(page, "encounter-add.png")
    _check_accessibility(page)
    added.click()
    page.wait_for_selector('.code-card[data-code="N18.32"][data-status="added"]')

    # selecting highlighted text shows its codes
    evidence_start = NOTE.index("essential hypertension")
    _select_text(page, evidence_start, evidence_start + len("essential hypertension"))
    page.locator('#selection-codes button[data-code="I10"]').wait_for()

    # finalize with the keyboard
    page.keyboard.press("Escape")
    page.keyboard.press("f")
    page.locator("#final-codes").wait_for()
    assert page.locator("#enc-status").inner_text() == "final"
    _screenshot(page, "encounter-final.png")

    # the encounter's own page now shows the final codes, read-only
    page.goto(f"{live_server.url}/ui/encounters/{encounter_id}")
    page.locator("#final-codes").wait_for()
    assert page.locator("#final-codes").inner_text() == "E11.22, I10, E78.00, N18.32"
    assert page.get_by_role("button", name="Accept", exact=False).count() == 0
    assert not page.locator("#finalize").is_visible()
    assert "added by a coder" in _card(page, "N18.32").inner_text()
    assert "added by a coder" not in _card(page, "I10").inner_text(), "a model code is not labelled as added"

    # the API shows the final codes ...
    with live_server.api("integration") as client:
        encounter = client.get(f"/v1/encounters/{encounter_id}").json()
    assert encounter["status"] == "final"
    assert {c["code"] for c in encounter["final_codes"]} == {"E11.22", "I10", "E78.00", "N18.32"}
    n18 = next(c for c in encounter["final_codes"] if c["code"] == "N18.32")
    assert n18["source"] == "coder"
    assert [(e["start"], e["end"], e["text"]) for e in n18["evidence"]] == [
        (start, start + len(ADD_PHRASE), ADD_PHRASE)
    ]
    with live_server.api("coder") as client:
        item = client.get(f"/v1/review/items/{item_id}").json()
    rejected = next(c for c in item["codes"] if c["code"] == "E66.9")
    assert rejected["status"] == "rejected" and "BMI not documented" in rejected["reason"]

    # ... and the audit log shows each step, by the signed-in coder
    with live_server.api("admin") as client:
        events = client.get("/v1/audit", params={"encounter_id": encounter_id, "limit": 500}).json()["events"]
    coder_steps = [e["action"] for e in events if e["actor"] == live_server.key_ids["coder"]]
    assert coder_steps == [
        "review.claimed",
        "review.decision.accept",
        "review.decision.accept",
        "review.decision.reject",
        "review.decision.replace",
        "review.decision.add",
        "review.finalized",
    ]
    decided = [e["after"]["code"] for e in events if e["action"].startswith("review.decision.")]
    assert decided == ["E11.22", "I10", "E66.9", "E78.5", "N18.32"]


def test_negated_mention_is_marked_and_never_evidence(live_server: LiveServer, page: Any) -> None:
    encounter_id = "enc-ui-neg"
    live_server.submit(encounter_id)
    _sign_in(page, live_server)
    page.get_by_role("button", name="Claim next item").click()
    page.wait_for_url("**/ui/review/*")
    _card(page, "I10").wait_for()

    start = NOTE.index(NEGATED_PHRASE)
    end = start + len(NEGATED_PHRASE)
    negated = page.locator(".note-text .m-negated")
    assert NEGATED_PHRASE in "".join(negated.all_inner_texts())
    labelled = page.locator(".note-text .m-negated.m-end[data-label='negated']")
    assert labelled.count() >= 1, "a negated mention carries a visible 'negated' label"
    style = negated.first.evaluate("el => getComputedStyle(el).textDecorationLine")
    assert "line-through" in style
    assert page.locator(".legend").get_by_text("negated").count() >= 1
    assert page.locator(".note-text .m-negated.ev").count() == 0, "no code's evidence is a negated mention"
    family = page.locator(".note-text .m-family.m-end[data-label='family']")
    assert "breast cancer" in "".join(family.all_inner_texts()), "a family-history mention is marked too"
    assert page.locator(".note-text .section-label", has_text="hpi").count() == 1, (
        "section chips name the section"
    )

    # the coder cannot add a code with the negated mention as its evidence
    _select_text(page, start, end)
    page.locator("#selection-blocked").wait_for()
    assert "negated mention" in page.locator("#selection-blocked").inner_text()
    assert not page.get_by_role("button", name="Add a code for this text").is_visible()
    page.keyboard.press("Escape")
    page.locator("#candidates summary").click()
    candidate = page.locator("#candidate-list li", has_text="R07.9")
    assert "negated mention" in candidate.inner_text()
    candidate.get_by_role("button", name="Add candidate R07.9").click()
    page.locator("#message").filter(has_text="cannot support a code").wait_for()
    assert _card(page, "R07.9").count() == 0

    # and through the API: no suggested code points at the negated mention
    with live_server.api("integration") as client:
        result = client.get(f"/v1/encounters/{encounter_id}").json()["result"]
    for code in result["codes"]:
        for ev in code["evidence"]:
            assert ev["end"] <= start or ev["start"] >= end, f"{code['code']} points at a negated mention"


def test_an_item_held_by_another_coder_is_read_only(live_server: LiveServer, page: Any) -> None:
    live_server.submit("enc-ui-held")
    with live_server.api("admin") as client:  # admin may review too: it takes the lease
        claim = client.post("/v1/review/claim").json()
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/ui/review/{claim['item_id']}")
    _card(page, "I10").wait_for()
    assert "you do not hold this item" in page.locator("#final-box").inner_text()
    assert page.locator(".code-card .actions").count() == 0
    assert not page.locator("#finalize").is_visible()
    page.keyboard.press("a")
    assert page.locator('.code-card[data-code="I10"]').get_attribute("data-status") == "pending"


@pytest.mark.slow
def test_builtin_model_never_codes_a_negated_mention(builtin_server: LiveServer, page: Any) -> None:
    """With the real model and the full pipeline: the negated mention is shown negated, and no suggested
    code (on the page or in the API) takes its evidence from it."""
    encounter_id = "enc-ui-builtin"
    builtin_server.submit(encounter_id)
    with builtin_server.api("coder") as client:
        annotations = client.get(f"/ui/api/encounters/{encounter_id}/annotations").json()
    assert annotations["mentions_available"]
    negated = [m for m in annotations["documents"][0]["mentions"] if m["assertion"]["negated"]]
    assert any(m["text"].lower() == NEGATED_PHRASE for m in negated), "the pipeline finds the negated mention"

    _sign_in(page, builtin_server)
    page.goto(f"{builtin_server.url}/ui/encounters/{encounter_id}")
    page.wait_for_url("**/ui/review/*")
    page.locator("#codes-summary").filter(has_text="codes").wait_for()
    shown = page.locator(".note-text .m-negated")
    assert NEGATED_PHRASE in "".join(shown.all_inner_texts()).lower()
    assert page.locator(".note-text .m-negated.ev").count() == 0
    _screenshot(page, "encounter-builtin.png")

    with builtin_server.api("integration") as client:
        result = client.get(f"/v1/encounters/{encounter_id}").json()["result"]
    for code in result["codes"]:
        for ev in code["evidence"]:
            for m in negated:
                assert ev["end"] <= m["start"] or ev["start"] >= m["end"], (
                    f"{code['code']} takes its evidence from the negated mention {m['text']!r}"
                )


# -- the live code set, decision states, visible errors, stale tabs ---------------------------------------


def _open_problem_item(page: Any, server: LiveServer, encounter_id: str) -> int:
    with server.api("integration") as client:
        response = client.post(
            "/v1/encounters", params={"route": "review"}, json=encounter_payload(encounter_id, PROBLEM_NOTE)
        )
    assert response.status_code == 201, response.text
    _sign_in(page, server)
    page.get_by_role("button", name="Claim next item").click()
    page.wait_for_url("**/ui/review/*")
    _card(page, "R32").wait_for()
    return int(page.url.rstrip("/").split("/")[-1])


def _focused_card(page: Any) -> str | None:
    return page.evaluate("() => document.activeElement?.closest('.code-card')?.dataset.code ?? null")


def test_finalize_is_refused_until_each_problem_is_fixed_or_overridden(
    problem_server: LiveServer, page: Any
) -> None:
    encounter_id = "enc-ui-problems"
    item_id = _open_problem_item(page, problem_server, encounter_id)
    page.set_viewport_size({"width": 1280, "height": 720})
    assert "Excludes1" in _card(page, "R32").locator(".problem").inner_text()
    assert "Excludes1" in _card(page, "N39.41").locator(".problem").inner_text()
    assert "7 characters" in _card(page, "0TTB").locator(".problem").inner_text()
    assert _card(page, "I10").locator(".problem").count() == 0
    assert "67 y · female · outpatient" in page.locator("#enc-patient").inner_text()
    assert page.locator("#enc-reasons").inner_text() == "forced review"

    # keyboard only: accept the four codes; focus stays on the next card after each accept
    _card(page, "R32").locator("button.code").focus()
    for expected_next in ("N39.41", "I10", "0TTB"):
        page.keyboard.press("a")
        page.wait_for_function(
            f"() => document.activeElement?.closest('.code-card')?.dataset.code === '{expected_next}'"
        )
    page.keyboard.press("a")
    page.wait_for_selector('.code-card[data-code="0TTB"][data-status="accepted"]')
    assert _focused_card(page) is not None, "focus stays on a card after an accept"

    # decision states differ at a glance: edge colour and badge
    page.keyboard.press("k")
    page.keyboard.press("r")
    page.get_by_label("Reason for rejecting I10").select_option("Not supported by the documentation")
    _card(page, "I10").get_by_role("button", name="Reject", exact=True).click()
    page.wait_for_selector('.code-card[data-code="I10"][data-status="rejected"]')
    edge = "el => getComputedStyle(el).borderLeftColor"
    badge = "el => getComputedStyle(el.querySelector('.decision')).backgroundColor"
    assert _card(page, "R32").evaluate(edge) != _card(page, "I10").evaluate(edge)
    assert _card(page, "R32").evaluate(badge) != _card(page, "I10").evaluate(badge)
    assert "\u2713" in _card(page, "R32").locator(".decision").inner_text()
    assert "\u2715" in _card(page, "I10").locator(".decision").inner_text()

    # finalize: refused, each problem listed
    page.locator("body").press("f")
    # the refusal answer arrives after the key press: wait for its message, not for a list that may already show
    page.wait_for_function("() => document.querySelector('#message')?.innerText.includes('Not finalized')")
    problems = page.locator("#problems-box")
    problems.locator("li").first.wait_for()
    listed = problems.inner_text()
    assert "R32 + N39.41" in listed and "0TTB" in listed
    assert page.locator("#enc-status").inner_text() == "in review"
    _screenshot(page, "encounter-problems-1280x720.png")
    _check_accessibility(page)

    # an incomplete code cannot be overridden: reject it; then override the Excludes1 pair with a reason
    assert problems.locator('li[data-problem="incomplete_code:0TTB"] input').count() == 0
    _card(page, "0TTB").get_by_role("button", name="Reject 0TTB").click()
    page.get_by_label("Reason for rejecting 0TTB").select_option("Wrong specificity")
    _card(page, "0TTB").get_by_role("button", name="Reject", exact=True).click()
    page.wait_for_selector('.code-card[data-code="0TTB"][data-status="rejected"]')
    assert "0TTB" not in problems.inner_text(), "the fixed problem leaves the list"
    reason = problems.get_by_label("Reason to override")
    reason.wait_for()
    reason.fill("stress and urge components documented by urology")
    problems.get_by_role("button", name="Finalize with these reasons").click()
    page.locator("#final-codes").wait_for()
    assert page.locator("#final-codes").inner_text() == "R32, N39.41"
    assert page.evaluate("() => document.activeElement.id") == "final-box", "focus moves to the final banner"

    with problem_server.api("admin") as client:
        events = client.get("/v1/audit", params={"encounter_id": encounter_id, "limit": 500}).json()["events"]
    final = next(e for e in events if e["action"] == "review.finalized")
    assert [(o["key"], o["reason"]) for o in final["after"]["overrides"]] == [
        ("excludes1:R32|N39.41", "stress and urge components documented by urology")
    ]
    with problem_server.api("coder") as client:
        assert client.get(f"/v1/review/items/{item_id}").json()["status"] == "final"


def test_errors_and_stale_tabs_are_shown_near_the_card(problem_server: LiveServer, page: Any) -> None:
    _open_problem_item(page, problem_server, "enc-ui-stale")
    url = page.url

    # a 502 with an HTML body and an offline server read as plain sentences, in the message bar and the card
    page.route(
        "**/decisions", lambda route: route.fulfill(status=502, body="<html><h1>Bad Gateway</h1></html>")
    )
    _card(page, "I10").get_by_role("button", name="Accept I10").click()
    page.locator("#message").filter(has_text="HTTP 502").wait_for()
    assert "<html" not in page.locator("#message").inner_text()
    assert "HTTP 502" in _card(page, "I10").locator(".card-msg").inner_text()
    page.unroute("**/decisions")
    page.route("**/decisions", lambda route: route.abort())
    _card(page, "I10").get_by_role("button", name="Accept I10").click()
    page.locator("#message").filter(has_text="Cannot reach the medcode server").wait_for()
    page.unroute("**/decisions")

    # a second tab decides R32; the first, stale, tab gets a conflict and a way to reload
    other = page.context.new_page()
    other.goto(url)
    _card(other, "R32").get_by_role("button", name="Reject R32").click()
    other.get_by_label("Reason for rejecting R32").select_option("Not supported by the documentation")
    _card(other, "R32").get_by_role("button", name="Reject", exact=True).click()
    other.wait_for_selector('.code-card[data-code="R32"][data-status="rejected"]')
    other.close()

    _card(page, "R32").get_by_role("button", name="Accept R32").click()
    page.locator("#message").filter(has_text="changed since this page loaded").wait_for()
    assert "changed since this page loaded" in _card(page, "R32").locator(".card-msg").inner_text()
    page.get_by_role("button", name="Reload the item").click()
    page.wait_for_selector('.code-card[data-code="R32"][data-status="rejected"]')
    assert _card(page, "N39.41").locator(".problem").count() == 0, "the removed R32 clears N39.41's conflict"
