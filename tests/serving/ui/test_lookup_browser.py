"""The coder's code lookup in Debian's Chromium: "+" opens the code search prefilled with the note text the
coder selected, the search ranks "hip fracture right initial" to S72.001A, the active result's
tabular detail (path, Includes/Excludes notes, 7th characters, the codes completing a header) is reachable
by keyboard, and Enter adds the chosen code; the ICD-10-PCS builder walks the seven axes offering only valid
values.

Screenshots of the lookup at 1440x900 and 1280x720 go to docs/screenshots/ (README).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medcode.settings import reset_settings
from tests.data.conftest import PCS_CODES, PCS_TABLES

from .conftest import NOTE, LiveServer, note_coder, serve
from .test_browser import _card, _sign_in
from .test_flow_browser import Keys, _check_accessibility, _screenshot

pytestmark = pytest.mark.browser

HIP = "Hip fracture right, initial"
LOOKUP_NOTE = NOTE.replace("Obesity.\n", f"Obesity. {HIP} evaluation after a fall.\n")


def _select(page: Any, start: int, end: int) -> None:
    """Select characters start..end of the note in the DOM (as caret browsing or a screen reader does)."""
    page.evaluate(
        """([start, end]) => {
          const point = (pos) => {
            for (const seg of document.querySelectorAll('.note-text .seg')) {
              const a = Number(seg.dataset.start), b = Number(seg.dataset.end);
              if (a <= pos && pos <= b) {
                const walker = document.createTreeWalker(seg, NodeFilter.SHOW_TEXT);
                let node = walker.nextNode(), offset = pos - a;
                while (node && offset > node.length) { offset -= node.length; node = walker.nextNode(); }
                return [node, offset];
              }
            }
            throw new Error('no segment holds ' + pos);
          };
          const [n1, o1] = point(start), [n2, o2] = point(end);
          window.getSelection().setBaseAndExtent(n1, o1, n2, o2);
        }""",
        [start, end],
    )


def test_plus_opens_search_from_selected_text_and_enter_adds_the_code(
    live_server: LiveServer, page: Any
) -> None:
    live_server.submit("enc-lookup-1", LOOKUP_NOTE)
    _sign_in(page, live_server)
    page.get_by_role("button", name="Claim next item").click()
    page.wait_for_url("**/ui/review/*")
    _card(page, "E11.22").wait_for()

    keys = Keys(page)
    start = LOOKUP_NOTE.index(HIP)
    _select(page, start, start + len(HIP))
    keys.press("+")
    search = page.get_by_label("Search codes (ICD-10-CM, ICD-10-PCS, HCPCS)")
    assert search.input_value() == HIP, "the search is prefilled with the selected text"
    assert page.evaluate("() => document.activeElement.id") == "add-search"
    first = page.locator('#add-results li[role="option"]').first
    first.wait_for()
    assert first.get_attribute("data-code") == "S72.001A", "a right hip fracture, initial encounter, first"

    # the active result's tabular detail: path, notes from its ancestors, where each note is written
    detail = page.locator("#add-detail")
    detail.locator("h3", has_text="S72.001A").wait_for()
    path = detail.locator(".detail-path li").all_inner_texts()
    assert path[0].startswith("19") and any(p.startswith("S72.00 ") for p in path)
    assert "traumatic amputation of hip and thigh" in detail.locator('[data-kind="excludes1"]').inner_text()
    assert "(at S72)" in detail.locator('[data-kind="excludes1"]').inner_text()
    assert detail.locator('[data-kind="excludes2"]').count() == 1
    page.set_viewport_size({"width": 1440, "height": 900})
    _screenshot(page, "lookup-1440x900.png")
    page.set_viewport_size({"width": 1280, "height": 720})
    _screenshot(page, "lookup-1280x720.png")
    _check_accessibility(page)

    # a header: its detail lists the 7th characters; ArrowRight goes into them, Enter adds the complete code
    search.fill("S72.001")
    page.locator('#add-results li[role="option"][data-code="S72.001"][aria-selected="true"]').wait_for()
    # the panel still shows S72.001A's detail until the header's arrives: wait for the header's own heading
    detail.locator("h3 .c").filter(has_text=re.compile(r"^S72\.001$")).wait_for()
    detail.locator(".detail-seventh").wait_for()
    assert "initial encounter for closed fracture" in detail.locator(".detail-seventh").inner_text()
    keys.press("ArrowRight")
    focused = page.evaluate("() => document.activeElement.dataset.code")
    assert focused == "S72.001A", "the first complete code in the detail takes focus"
    keys.press("ArrowLeft")
    assert page.evaluate("() => document.activeElement.id") == "add-search"
    keys.press("ArrowRight")
    keys.press("Enter")
    page.wait_for_selector('.code-card[data-code="S72.001A"][data-status="added"]')
    item = int(page.url.rstrip("/").split("/")[-1])
    with live_server.api("coder") as client:
        codes = client.get(f"/v1/review/items/{item}").json()["codes"]
    added = next(c for c in codes if c["code"] == "S72.001A")
    assert [e["text"] for e in added["evidence"]] == [HIP], "the selected text is the added code's evidence"
    assert keys.count == 5, "+, ArrowRight, ArrowLeft, ArrowRight, Enter"


@pytest.fixture
def pcs_server(tmp_path: Path, ui_pipeline: Any) -> Iterator[LiveServer]:
    """The app over a datasets folder holding a tiny ICD-10-PCS release (two appendectomy codes + tables)."""
    folder = tmp_path / "datasets" / "icd10pcs"
    folder.mkdir(parents=True)
    (folder / "icd10pcs_tables_2021.xml").write_text(PCS_TABLES, encoding="utf-8")
    (folder / "icd10pcs-codes-2024.txt").write_text(PCS_CODES, encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDCODE_DATA_DIR", str(tmp_path / "datasets"))
        reset_settings()
        with serve(tmp_path, note_coder()) as server:
            yield server
    reset_settings()


def test_pcs_builder_walks_the_axes_by_keyboard_and_adds_the_code(pcs_server: LiveServer, page: Any) -> None:
    pcs_server.submit("enc-lookup-pcs", LOOKUP_NOTE)
    _sign_in(page, pcs_server)
    page.get_by_role("button", name="Claim next item").click()
    page.wait_for_url("**/ui/review/*")
    _card(page, "E11.22").wait_for()
    start = LOOKUP_NOTE.index("Obesity")
    _select(page, start, start + len("Obesity"))
    keys = Keys(page)
    keys.press("+")
    page.get_by_role("button", name="Build an ICD-10-PCS code").focus()
    keys.press("Enter")
    builder = page.locator("#pcs-builder")
    builder.locator("legend", has_text="Character 1: Section").wait_for()
    assert builder.locator(".pcs-option").all_inner_texts() == [
        "0 Medical and Surgical",
        "B (no label in this release)",
    ]
    for legend in ("Character 2: Body System", "Character 3: Operation", "Character 4: Body Part"):
        keys.press("Enter")  # the first (here the only valid) value
        builder.locator("legend", has_text=legend).wait_for()
    keys.press("Enter")
    builder.locator("legend", has_text="Character 5: Approach").wait_for()
    assert builder.locator(".pcs-option").all_inner_texts() == ["0 Open", "4 Percutaneous Endoscopic"]
    keys.press("ArrowDown")
    keys.press("Enter")  # 4: percutaneous endoscopic
    builder.locator("legend", has_text="Character 6: Device").wait_for()
    keys.press("Backspace")  # back one axis
    builder.locator("legend", has_text="Character 5: Approach").wait_for()
    keys.press("ArrowDown")
    keys.press("Enter")
    builder.locator("legend", has_text="Character 6: Device").wait_for()
    keys.press("Enter")
    builder.locator("legend", has_text="Character 7: Qualifier").wait_for()
    keys.press("Enter")
    add = builder.get_by_role("button", name="Add 0DTJ4ZZ")
    add.wait_for()
    assert "Resection of Appendix, Percutaneous Endoscopic Approach" in builder.inner_text()
    _check_accessibility(page)
    keys.press("Enter")
    page.wait_for_selector('.code-card[data-code="0DTJ4ZZ"][data-status="added"]')
    assert keys.count == 14, (
        "+, open, 4 axes, approach (down, enter, back, down, enter), device, qualifier, add"
    )
