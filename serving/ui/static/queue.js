// The review queue: items by priority with their routing reasons summarised (one line per item), filters,
// "claim next" and claiming a chosen item (its row's button, or j/k to move and c / Enter to claim).
import { api, el, formatAge, formatPercent, isTyping, say } from "./api.js";

const me = document.getElementById("queue-app").dataset.me;

const body = document.getElementById("queue-body");
const empty = document.getElementById("queue-empty");
const status = document.getElementById("status");
const reasonFilter = document.getElementById("filter-reason");
const statusFilter = document.getElementById("filter-status");
const claimButton = document.getElementById("claim-next");

let items = [];

export const reasonKind = (reason) => String(reason).split(":")[0];
const labelOf = (kind) => kind.replaceAll("_", " ");

function codeCount(item) {
  if (typeof item.n_codes === "number") return item.n_codes;
  if (Array.isArray(item.codes)) return item.codes.length;
  return null;
}

function lowestConfidence(item) {
  const v = item.lowest_confidence ?? item.min_confidence;
  return typeof v === "number" ? v : null;
}

function itemStatus(item) {
  return item.claimed ? "claimed" : "waiting";
}

/** The reasons of an item in one short line: "low confidence: E66.9, E78.5 · forced review". */
export function summariseReasons(reasons) {
  const byKind = new Map();
  for (const r of reasons || []) {
    const text = String(r);
    const i = text.indexOf(":");
    const kind = i < 0 ? text : text.slice(0, i);
    if (!byKind.has(kind)) byKind.set(kind, []);
    if (i >= 0) byKind.get(kind).push(...text.slice(i + 1).split("|").filter(Boolean));
  }
  return [...byKind.entries()].map(([kind, codes]) => {
    const shown = codes.slice(0, 3).join(", ");
    const more = codes.length > 3 ? ` +${codes.length - 3}` : "";
    return codes.length ? `${labelOf(kind)}: ${shown}${more}` : labelOf(kind);
  });
}

function ensureOptions(select, values, label) {
  const have = new Set([...select.options].map((o) => o.value));
  for (const value of values) {
    if (!have.has(value)) select.append(el("option", { value, text: label(value) }));
  }
}

function render() {
  // a refresh keeps the keyboard focus on the same item's button
  const focused = document.activeElement?.closest("#queue-body tr")?.dataset.itemId ?? null;
  const reason = reasonFilter.value;
  const wanted = statusFilter.value;
  const shown = items
    .filter((it) => !reason || (it.reasons || []).some((r) => reasonKind(r) === reason))
    .filter((it) => !wanted || itemStatus(it) === wanted)
    .sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0) || a.item_id - b.item_id);
  body.replaceChildren(
    ...shown.map((it) => {
      const n = codeCount(it);
      const low = lowestConfidence(it);
      const created = it.created_at ?? it.queued_at ?? it.submitted_at;
      return el(
        "tr",
        { dataset: { itemId: it.item_id, encounterId: it.encounter_id } },
        el("td", { class: "prio num", title: "lower is served first", text: Number(it.priority ?? 0).toFixed(3) }),
        el(
          "td",
          {},
          el("a", {
            href: `/ui/review/${encodeURIComponent(it.item_id)}`,
            text: it.encounter_id,
            "aria-label": `View encounter ${it.encounter_id} (review item ${it.item_id})`,
          }),
        ),
        el(
          "td",
          { class: "reasons", title: (it.reasons || []).join(", ") },
          summariseReasons(it.reasons).join(" · "),
        ),
        el("td", { class: "num", title: created || "", text: formatAge(created) }),
        el("td", { class: "num", text: n === null ? "–" : String(n) }),
        el("td", { class: "num", text: formatPercent(low) }),
        el("td", {}, el("span", { class: "badge", text: it.claimed && it.lease_holder === me ? "claimed by you" : itemStatus(it) })),
        el(
          "td",
          {},
          it.claimed && it.lease_holder !== me
            ? null
            : el("button", {
              type: "button", class: "claim", text: it.claimed ? "Open" : "Claim",
              "aria-label": `${it.claimed ? "Open" : "Claim"} ${it.encounter_id}`,
              onclick: () => claimItem(it),
            }),
        ),
      );
    }),
  );
  if (focused !== null) body.querySelector(`tr[data-item-id="${focused}"] button.claim`)?.focus();
  empty.hidden = shown.length > 0;
  say(status, `${shown.length} of ${items.length} items shown`);
}

let loads = 0; // a refresh (r, the button, the 30 s timer) can overlap another: only the latest one renders

async function load() {
  const mine = ++loads;
  try {
    const data = await api("GET", "/v1/review/queue?limit=200");
    if (mine !== loads) return;
    items = (data && data.items) || [];
    const kinds = [...new Set(items.flatMap((it) => (it.reasons || []).map(reasonKind)))].sort();
    ensureOptions(reasonFilter, kinds, labelOf);
    render();
    if (data && typeof data.total === "number" && data.total > items.length) {
      say(status, `${items.length} of ${data.total} items loaded (highest priority first)`);
    }
  } catch (err) {
    if (mine === loads) say(status, err.message, "error");
  }
}

async function claimItem(it) {
  try {
    const claim = await api("POST", `/v1/review/items/${encodeURIComponent(it.item_id)}/claim`);
    window.location.assign(`/ui/review/${encodeURIComponent(claim.item_id)}`);
  } catch (err) {
    say(status, `${it.encounter_id}: ${err.message}`, "error");
    load();
  }
}

/** j/k move the focus between the rows' claim buttons. */
function moveRow(delta) {
  const buttons = [...body.querySelectorAll("button.claim")];
  if (!buttons.length) return;
  const at = buttons.indexOf(document.activeElement);
  const next = at < 0 ? (delta > 0 ? 0 : buttons.length - 1) : Math.max(0, Math.min(buttons.length - 1, at + delta));
  buttons[next].focus();
  buttons[next].closest("tr").scrollIntoView({ block: "nearest" });
}

async function claimNext() {
  claimButton.disabled = true;
  try {
    const claim = await api("POST", "/v1/review/claim");
    if (!claim) {
      say(status, "The queue is empty: nothing to claim.", "ok");
      return;
    }
    window.location.assign(`/ui/review/${encodeURIComponent(claim.item_id)}`);
  } catch (err) {
    say(status, err.message, "error");
  } finally {
    claimButton.disabled = false;
  }
}

reasonFilter.addEventListener("change", render);
statusFilter.addEventListener("change", render);
document.getElementById("refresh").addEventListener("click", load);
claimButton.addEventListener("click", claimNext);
document.addEventListener("keydown", (event) => {
  if (isTyping(event) || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "n") {
    event.preventDefault();
    claimNext();
  } else if (event.key === "r") {
    event.preventDefault();
    load();
  } else if (event.key === "j" || event.key === "k") {
    event.preventDefault();
    moveRow(event.key === "j" ? 1 : -1);
  } else if (event.key === "c" && document.activeElement?.matches("button.claim")) {
    event.preventDefault();
    document.activeElement.click();
  }
});

load();
setInterval(load, 30000);
