// The encounter page: the note with evidence and mentions, the code list, decisions, finalize.
// With an item id it shows a review item (GET /v1/review/items/ID) and, when the signed-in coder holds its
// lease, lets them decide; without one it shows an encounter read-only (GET /v1/encounters/ID).
// The server checks the live code set after every decision (each card shows its problems) and refuses to
// finalize while a problem is neither fixed nor overridden with a reason; each decision sends back the
// code's `rev`, so a stale tab gets a conflict instead of overwriting another decision.
import { api, el, formatPercent, isTyping, say } from "./api.js";
import { renderNote, selectionRange, setActiveEvidence } from "./note.js";
import { attachTypeahead } from "./search.js";
import { attachPcsBuilder } from "./lookup.js";

const root = document.getElementById("encounter-app");
const me = root.dataset.me;
const leaseSeconds = Number(root.dataset.leaseSeconds) || 900;
let itemId = root.dataset.itemId || null;
let encounterId = root.dataset.encounterId || null;

const $ = (id) => document.getElementById(id);
const noteBox = $("note");
const list = $("code-list");
const message = $("message");
const liveStatus = $("status");
const finalizeButton = $("finalize");
const finalizeNextButton = $("finalize-next");
const codesPane = $("codes-pane");
const problemsBox = $("problems-box");
const releaseButton = $("release");
const selectionBox = $("selection-box");
const addForm = $("add-form");
const help = $("help");

const REJECT_REASONS = [
  "Not supported by the documentation",
  "Condition negated or ruled out",
  "Family history only",
  "Wrong specificity",
  "Duplicate of another code",
  "Other",
];
const DROPPED = new Set(["rejected", "replaced"]);

const app = {
  view: null, // {status, result, reasons, leaseHolder, leaseExpiresAt, finalCodes}
  docs: [],
  codes: [],
  candidates: [],
  selected: 0,
  openForm: null, // {key, kind: "reject" | "replace"}
  selection: null,
  finalizeArmed: false,
  busy: false,
  problems: [], // live problems of the kept code set (server)
  showOverrides: false, // after a refused finalize: reasons can be typed for overridable problems
  cardMessage: null, // {key, text}: the last error of an action on a card, shown in that card
  sequence: null, // the coder's order of the codes ("SYSTEM|CODEKEY"), principal diagnosis first
  table: localStorage.getItem("medcode.view") === "table", // the compact table view
  lastRenew: 0, // when the lease was last renewed (throttles renewals on activity)
  expiredShown: false, // the page said the lease expired
  finalizeNext: false, // the refused finalize was "finalize and next"
};
const overrideReasons = new Map(); // problem key -> the reason typed so far (kept across re-renders)
const pendingKeys = []; // action keys pressed while a request runs: replayed in order afterwards

const holdsLease = () =>
  Boolean(itemId) && app.view && app.view.status === "open" && app.view.leaseHolder === me &&
  (!app.view.leaseExpiresAt || Date.parse(app.view.leaseExpiresAt) > Date.now());
const canEdit = () => holdsLease();
/** The signed-in coder held this item's lease (live or expired). */
const leaseWasMine = () => Boolean(itemId) && app.view && app.view.status === "open" && app.view.leaseHolder === me;

let messageTimer = null;

function notify(text, kind = "") {
  say(message, text, kind);
  say(liveStatus, text);
  message.hidden = !text;
  clearTimeout(messageTimer);
  if (kind === "ok") messageTimer = setTimeout(() => { message.hidden = true; }, 4000);
}

/** An error from the API: in the sticky message bar and, when it concerns a card, inside that card. */
function showError(err, card = null) {
  const stale = err && ["stale_code", "stale_item"].includes(err.code);
  const text = stale
    ? `${err.message}`
    : err && err.status === 409 && err.code && err.code.startsWith("lease")
      ? `${err.message}. Claim the item again from the review queue.`
      : (err && err.message) || String(err);
  notify(text, "error");
  if (stale) {
    message.append(" ", el("button", { type: "button", id: "message-reload", text: "Reload the item", onclick: () => load() }));
  }
  app.cardMessage = card ? { key: card.key, text } : null;
  if (card) {
    const box = document.querySelector(`#card-${domKey(card.key)} .card-msg`);
    if (box) {
      box.textContent = text;
      box.hidden = false;
    }
  }
}

function setBusy(on) {
  app.busy = on;
  codesPane.setAttribute("aria-busy", on ? "true" : "false");
  $("busy").hidden = !on;
  finalizeButton.disabled = on || !canEdit();
  finalizeNextButton.disabled = on || !canEdit();
  if (!on) drainKeys();
}

function drainKeys() {
  while (!app.busy && pendingKeys.length) runKey(pendingKeys.shift());
}

// ---- data ---------------------------------------------------------------------------------------

export function parseReason(reason) {
  const text = String(reason);
  const i = text.indexOf(":");
  if (i < 0) return { kind: text, codes: [] };
  return { kind: text.slice(0, i), codes: text.slice(i + 1).split(/[|,;/\s]+/).filter(Boolean) };
}

const keyOf = (c) => `${c.system}|${c.code}`.replace(/[^A-Za-z0-9|.-]/g, "_");
const domKey = (key) => key.replace(/[|.]/g, "-");

function setCodes(codes) {
  const selectedKey = app.codes[app.selected] ? app.codes[app.selected].key : null;
  const reasons = app.view.reasons;
  app.codes = codes.map((c) => ({
    key: keyOf(c),
    system: c.system || "ICD-10-CM",
    code: c.code,
    description: c.description || "",
    confidence: typeof c.confidence === "number" ? c.confidence : null,
    evidence: c.evidence || [],
    rationale: c.rationale || "",
    warnings: c.warnings || [],
    reasons: reasons.filter((r) => parseReason(r).codes.includes(c.code)),
    origin: c.origin || "model",
    status: c.status || "pending",
    reason: c.reason || null,
    replacedBy: c.replaced_by || null,
    problems: c.problems || [],
    rev: typeof c.rev === "number" ? c.rev : null,
    billable: c.billable,
    source: c.source || null,
  }));
  sortCodes();
  const index = app.codes.findIndex((c) => c.key === selectedKey);
  app.selected = index >= 0 ? index : Math.min(app.selected, Math.max(0, app.codes.length - 1));
}

// ---- sequencing: diagnoses (principal first) then procedures, in the coder's order ---------------

const isDiagnosis = (c) => c.system === "ICD-10-CM";
export const seqKey = (c) => `${c.system}|${String(c.code).replace(/[\s.]/g, "").toUpperCase()}`;

function sortCodes() {
  const rank = new Map((app.sequence || []).map((k, i) => [k, i]));
  const order = app.codes.map((c, i) => ({ c, i }));
  order.sort((a, b) =>
    (isDiagnosis(a.c) ? 0 : 1) - (isDiagnosis(b.c) ? 0 : 1) ||
    (rank.has(seqKey(a.c)) ? rank.get(seqKey(a.c)) : rank.size) - (rank.has(seqKey(b.c)) ? rank.get(seqKey(b.c)) : rank.size) ||
    a.i - b.i);
  app.codes = order.map((o) => o.c);
}

/** The principal diagnosis: the first kept ICD-10-CM code in the order shown. */
const principalOf = () => app.codes.find((c) => isDiagnosis(c) && !DROPPED.has(c.status)) || null;

async function moveSelected(delta, toTop = false) {
  if (!canEdit() || !app.codes.length) return;
  const card = app.codes[app.selected];
  const group = app.codes.filter((c) => isDiagnosis(c) === isDiagnosis(card));
  const at = group.indexOf(card);
  const to = toTop ? 0 : Math.max(0, Math.min(group.length - 1, at + delta));
  if (to === at) {
    notify(toTop ? `${card.code} is already first.` : `${card.code} cannot move further.`, "ok");
    focusCard();
    return;
  }
  if (toTop && !isDiagnosis(card)) {
    notify("Only a diagnosis can be the principal code.", "error");
    return;
  }
  group.splice(at, 1);
  group.splice(to, 0, card);
  const others = app.codes.filter((c) => isDiagnosis(c) !== isDiagnosis(card));
  app.codes = isDiagnosis(card) ? [...group, ...others] : [...others, ...group];
  app.sequence = app.codes.map(seqKey);
  app.selected = app.codes.indexOf(card);
  renderCodes();
  focusCard();
  setBusy(true);
  try {
    const body = { sequence: app.codes.map((c) => `${c.system}|${c.code}`) };
    if (typeof app.view.version === "number") body.expected_version = app.view.version; // 409 when stale
    const out = await api("PUT", `/v1/review/items/${encodeURIComponent(itemId)}/sequence`, body);
    app.sequence = out.sequence;
    if (out.lease_expires_at) app.view.leaseExpiresAt = out.lease_expires_at;
    app.lastRenew = Date.now();
    const principal = principalOf();
    notify(`Moved ${card.code}${principal ? `; principal diagnosis: ${principal.code}` : ""}.`, "ok");
  } catch (err) {
    showError(err, card);
  } finally {
    setBusy(false);
  }
}

async function loadItem() {
  const [item, annotations] = await Promise.all([
    api("GET", `/v1/review/items/${encodeURIComponent(itemId)}`),
    api("GET", `/ui/api/review/items/${encodeURIComponent(itemId)}/annotations`),
  ]);
  encounterId = item.encounter_id;
  let finalCodes = [];
  if (item.status === "final") {
    const enc = await api("GET", `/v1/encounters/${encodeURIComponent(encounterId)}`);
    finalCodes = enc.final_codes || [];
  }
  app.view = {
    status: item.status,
    result: item.result || {},
    reasons: item.reasons || (item.result.routing && item.result.routing.reasons) || [],
    leaseHolder: item.lease_holder,
    leaseExpiresAt: item.lease_expires_at,
    finalCodes,
    revision: item.revision,
    version: item.version,
    patient: item.patient || {},
    setting: item.setting,
    date: item.date,
    supersededBy: item.superseded_by || null,
  };
  app.sequence = item.sequence || null;
  app.docs = mergeAnnotations(item.documents || [], annotations);
  setCodes(item.codes || []);
  app.problems = item.problems || [];
  app.candidates = item.candidates || [];
}

async function loadEncounter() {
  const [enc, annotations] = await Promise.all([
    api("GET", `/v1/encounters/${encodeURIComponent(encounterId)}`),
    api("GET", `/ui/api/encounters/${encodeURIComponent(encounterId)}/annotations`),
  ]);
  if (enc.review_item_id) {
    window.location.replace(`/ui/review/${encodeURIComponent(enc.review_item_id)}`);
    return false;
  }
  app.view = {
    status: enc.status,
    result: enc.result || {},
    reasons: (enc.result.routing && enc.result.routing.reasons) || [],
    leaseHolder: null,
    leaseExpiresAt: null,
    finalCodes: enc.final_codes || [],
    revision: enc.revision,
    patient: enc.patient || {},
    setting: enc.setting,
    date: enc.date,
  };
  app.docs = annotations.documents || [];
  // final codes keep where they came from: a model code is not "added by a coder"
  const shown = enc.status === "in_review"
    ? enc.result.codes || []
    : (enc.final_codes || []).map((c) => {
      const suggested = (enc.result.codes || []).find((s) => s.code === c.code);
      return {
        ...c,
        status: "accepted",
        origin: c.source === "coder" ? "added" : "model",
        confidence: suggested ? suggested.confidence : null,
        source: c.source || "model",
      };
    });
  setCodes(shown);
  app.problems = [];
  app.candidates = [];
  return true;
}

function mergeAnnotations(documents, annotations) {
  const byId = new Map(((annotations && annotations.documents) || []).map((d) => [d.document_id, d]));
  return documents.map((d) => {
    const extra = byId.get(d.document_id) || {};
    return { ...d, sections: extra.sections || [], mentions: extra.mentions || [] };
  });
}

async function load() {
  try {
    if (itemId) await loadItem();
    else if (!(await loadEncounter())) return false;
    app.cardMessage = null;
    renderHeader();
    renderAll();
    return true;
  } catch (err) {
    showError(err);
    return false;
  }
}

// ---- rendering ----------------------------------------------------------------------------------

const STATUS_TEXT = { open: "in review", final: "final", superseded: "superseded", auto_accepted: "auto-accepted", in_review: "in review" };

function renderHeader() {
  const view = app.view;
  const result = view.result;
  $("enc-id").textContent = encounterId;
  document.title = `Encounter ${encounterId} · medcode`;
  $("enc-status").textContent = STATUS_TEXT[view.status] || view.status;
  $("enc-status").classList.toggle("final", view.status === "final");
  $("model-version").textContent = result.model_version || "–";
  const patient = view.patient || {};
  const facts = [
    typeof patient.age === "number" ? `${patient.age} y` : null,
    patient.sex || null,
    view.setting || null,
    view.date || null,
  ].filter(Boolean);
  $("enc-patient").textContent = facts.length ? facts.join(" · ") : "–";
  $("code-set-version").textContent = result.code_set_version || "–";
  const general = view.reasons.filter((r) => parseReason(r).codes.length === 0);
  const perCode = view.reasons.filter((r) => parseReason(r).codes.length > 0);
  $("enc-reasons").replaceChildren(
    ...general.map((r) => el("span", { class: "badge reason", text: r.replaceAll("_", " ") })),
    ...(perCode.length ? [el("span", { class: "badge reason", title: perCode.join(", "), text: `${perCode.length} code reason${perCode.length > 1 ? "s" : ""}` })] : []),
  );
  const leaseBox = $("lease");
  if (leaseWasMine() && !holdsLease()) {
    leaseBox.hidden = false;
    $("lease-label").textContent = "Your lease:";
    $("lease-until").textContent = "expired";
  } else if (holdsLease() && view.leaseExpiresAt) {
    leaseBox.hidden = false;
    $("lease-label").textContent = "Your lease:";
    $("lease-until").textContent = leaseLeft();
  } else if (itemId && view.status === "open") {
    leaseBox.hidden = false;
    $("lease-label").textContent = "Lease:";
    $("lease-until").textContent = view.leaseHolder ? "held by another coder" : "not claimed";
  } else {
    leaseBox.hidden = true;
  }
  // after the lease ran out the buttons stay in place, disabled, so the coder sees why nothing happens
  finalizeButton.hidden = !leaseWasMine();
  finalizeNextButton.hidden = !leaseWasMine();
  finalizeButton.disabled = app.busy || !canEdit();
  finalizeNextButton.disabled = app.busy || !canEdit();
  releaseButton.hidden = !canEdit();
  $("bulk").hidden = !canEdit();
  renderBanner();
}

function renderBanner() {
  const box = $("final-box");
  const view = app.view;
  box.classList.toggle("info", view.status !== "final");
  if (view.status === "final") {
    const finals = view.finalCodes.map((c) => c.code);
    box.hidden = false;
    box.tabIndex = -1;
    box.replaceChildren(
      el("strong", { text: "Finalized. Final codes: " }),
      el("span", { id: "final-codes", text: finals.join(", ") || "none" }),
      " · ",
      el("a", { href: "/ui/queue", text: "back to the queue" }),
    );
    return;
  }
  if (itemId && view.status === "superseded") {
    box.hidden = false;
    box.replaceChildren(
      "This item was superseded by a newer revision of the encounter.",
      ...(view.supersededBy
        ? [" ", el("a", { id: "superseded-link", href: `/ui/review/${encodeURIComponent(view.supersededBy)}`, text: "Open the new revision" }), " (the decisions that still apply were carried over)."]
        : [" Claim an item from the ", el("a", { href: "/ui/queue", text: "review queue" }), "."]),
    );
    return;
  }
  if (itemId && leaseWasMine() && !canEdit()) {
    box.hidden = false;
    box.replaceChildren("Your lease on this item has expired: finalizing is disabled. ",
      el("button", { type: "button", id: "reclaim", text: "Claim it again", onclick: reclaim }));
    return;
  }
  if (itemId && !canEdit()) {
    box.hidden = false;
    box.replaceChildren("Read-only: you do not hold this item. Claim an item from the ", el("a", { href: "/ui/queue", text: "review queue" }), " to code it.");
    return;
  }
  box.hidden = true;
}

function evidenceSpans() {
  const byDoc = new Map();
  const selected = app.codes[app.selected];
  for (const card of app.codes) {
    if (DROPPED.has(card.status) && card !== selected) continue;
    for (const ev of card.evidence) {
      if (!byDoc.has(ev.document_id)) byDoc.set(ev.document_id, []);
      byDoc.get(ev.document_id).push({ key: card.key, label: card.code, start: ev.start, end: ev.end, added: card.origin !== "model" });
    }
  }
  return byDoc;
}

function renderAll() {
  renderNote(noteBox, app.docs, evidenceSpans());
  renderCodes();
  renderCandidates();
  highlightSelected(false);
}

function confidenceBar(card) {
  if (card.confidence === null) {
    const who = card.origin === "replacement"
      ? "replacement chosen by a coder"
      : card.origin === "added" ? "added by a coder" : "model code";
    return el("div", { class: "conf", text: who });
  }
  const pct = Math.round(card.confidence * 100);
  const fill = el("div", { class: `fill${card.confidence < 0.5 ? " low" : ""}` });
  fill.style.width = `${pct}%`;
  const calibrated = app.view.result.calibrated !== false;
  return el(
    "div",
    { class: "conf" },
    el(
      "div",
      {
        class: "bar", role: "meter", "aria-label": `Confidence for ${card.code}`,
        "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(pct), "aria-valuetext": `${pct}%`,
      },
      fill,
    ),
    el("span", { text: formatPercent(card.confidence) }),
    calibrated ? null : el("span", { class: "uncal", text: "(uncalibrated)" }),
  );
}

const STATUS_LABEL = { pending: "no decision", accepted: "accepted", rejected: "rejected", replaced: "replaced", added: "added" };
const STATUS_ICON = { pending: "\u25CB", accepted: "\u2713", rejected: "\u2715", replaced: "\u21C4", added: "+" };

function decisionLabel(card) {
  let text = card.status === "replaced" && card.replacedBy ? `replaced by ${card.replacedBy}` : STATUS_LABEL[card.status] || card.status;
  if (card.source && !itemId) text = card.source === "coder" ? "final · added by a coder" : "final · model code";
  return el(
    "span",
    { class: `decision ${card.status}` },
    el("span", { class: "icon", "aria-hidden": "true", text: STATUS_ICON[card.status] || "" }),
    el("span", { text }),
  );
}

function rejectForm(card) {
  const k = domKey(card.key);
  const selectId = `reject-reason-${k}`;
  const noteId = `reject-note-${k}`;
  const form = el(
    "form",
    { class: "inline-form", "data-form": "reject" },
    el("label", { for: selectId, text: `Reason for rejecting ${card.code}` }),
    el("div", { class: "row" }, el("select", { id: selectId, name: "reason" }, ...REJECT_REASONS.map((r) => el("option", { value: r, text: r })))),
    el(
      "div",
      { class: "row" },
      el("label", { for: noteId, class: "visually-hidden", text: "Details (optional)" }),
      el("input", { type: "text", id: noteId, name: "note", placeholder: "details (optional)" }),
      el("button", { type: "submit", class: "danger", text: "Reject" }),
      el("button", { type: "button", text: "Cancel", onclick: closeForm }),
    ),
  );
  // Enter on the reason list rejects with that reason (two keys: r, Enter)
  form.elements.reason.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const reason = form.elements.reason.value;
    const note = form.elements.note.value.trim();
    decide(card, { action: "reject", reason: note ? `${reason}: ${note}` : reason });
  });
  return form;
}

function replaceForm(card) {
  const k = domKey(card.key);
  const inputId = `replace-search-${k}`;
  const listId = `replace-results-${k}`;
  const input = el("input", {
    type: "search", id: inputId, role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false",
    "aria-controls": listId, autocomplete: "off", placeholder: "code or words",
  });
  const system = el(
    "select",
    { "aria-label": `Code system to search for the replacement of ${card.code}` },
    el("option", { value: "", text: "All systems" }),
    ...["ICD-10-CM", "ICD-10-PCS", "HCPCS"].map((s) => el("option", { value: s, text: s, selected: s === card.system })),
  );
  const results = el("ul", { role: "listbox", id: listId, "aria-label": "Matching codes" });
  const form = el(
    "div",
    { class: "inline-form typeahead", "data-form": "replace" },
    el("label", { for: inputId, text: `Replace ${card.code} with` }),
    el("div", { class: "row" }, input, system, el("button", { type: "button", text: "Cancel", onclick: closeForm })),
    results,
  );
  attachTypeahead({
    input, list: results, systemSelect: system,
    onChoose: (r) => decide(card, { action: "replace", replacement: r.code, replacementSystem: r.system }),
  });
  return form;
}

const WARNING_TEXT = {
  excludes1: "Excludes1 conflict",
  excludes2: "Excludes2 note",
  code_first: "Code first the underlying condition",
  use_additional: "Use an additional code",
  code_also: "Code also",
  unspecified: "Unspecified code; a more specific one may be supported",
  billable: "Not billable at this level",
  age: "Implausible for the patient's age",
  sex: "Implausible for the patient's sex",
  seventh_character: "7th character needed",
};

export function warningText(warning) {
  const { kind, codes } = parseReason(warning);
  const base = Object.entries(WARNING_TEXT).find(([k]) => kind.toLowerCase().startsWith(k));
  if (!base) return warning.replaceAll("_", " ");
  return codes.length ? `${base[1]}: ${codes.join(", ")}` : base[1];
}

function sequenceLabel(card, principal) {
  const group = app.codes.filter((c) => isDiagnosis(c) === isDiagnosis(card));
  const n = group.indexOf(card) + 1;
  if (!isDiagnosis(card)) return el("span", { class: "seq", title: "procedure sequence", text: `#${n}` });
  const role = DROPPED.has(card.status) ? "dropped" : card === principal ? "principal" : "secondary";
  return el("span", { class: `seq ${role}`, text: `#${n} ${role}` });
}

function cardElement(card, index, principal = principalOf()) {
  const selected = index === app.selected;
  const li = el(
    "li",
    {
      class: `code-card${selected ? " selected" : ""}${card.problems.length ? " has-problems" : ""}`,
      id: `card-${domKey(card.key)}`,
      "aria-current": selected ? "true" : null,
      dataset: { key: card.key, code: card.code, status: card.status, origin: card.origin },
    },
    el(
      "div",
      { class: "line1" },
      sequenceLabel(card, principal),
      el("button", {
        type: "button", class: "code", text: card.code,
        "aria-label": `Select ${card.code} and show its evidence`,
        onclick: () => select(index),
      }),
      el("span", { class: "system", text: card.system }),
      decisionLabel(card),
      el("span", { class: "desc", text: card.description || "(no description)" }),
      el("span", { class: "pct", "aria-hidden": "true", text: card.confidence === null ? "" : formatPercent(card.confidence) }),
    ),
    confidenceBar(card),
    card.rationale ? el("p", { class: "rationale", text: card.rationale }) : null,
    card.reasons.length
      ? el("div", { class: "tags", "aria-label": "Routing reasons" }, ...card.reasons.map((r) => el("span", { class: "badge reason", text: parseReason(r).kind.replaceAll("_", " ") })))
      : null,
    ...card.problems.map((p) => el("div", { class: "problem", role: "note", dataset: { kind: p.kind }, text: p.message })),
    ...card.warnings.map((w) => el("div", { class: "warning", role: "note", text: warningText(w) })),
    card.status === "rejected" && card.reason ? el("div", { class: "replaced-by", text: `Reason: ${card.reason}` }) : null,
    card.evidence.length === 0 ? el("div", { class: "rationale", text: "No evidence span in the note." }) : null,
    el("div", {
      class: "card-msg", role: "alert",
      hidden: !(app.cardMessage && app.cardMessage.key === card.key),
      text: app.cardMessage && app.cardMessage.key === card.key ? app.cardMessage.text : "",
    }),
  );
  if (canEdit()) {
    const actions = el("div", { class: "actions" });
    if (card.status !== "accepted" && card.status !== "added") {
      actions.append(el("button", {
        type: "button", class: "success", text: "Accept", "aria-keyshortcuts": "a", "aria-label": `Accept ${card.code}`,
        onclick: () => { select(index); decide(card, { action: "accept" }); },
      }));
    }
    if (card.status !== "rejected") {
      actions.append(el("button", {
        type: "button", class: "danger", text: "Reject…", "aria-keyshortcuts": "r", "aria-label": `Reject ${card.code}`,
        onclick: () => { select(index); openForm(card, "reject"); },
      }));
    }
    if (card.status !== "replaced") {
      actions.append(el("button", {
        type: "button", text: "Replace…", "aria-keyshortcuts": "e", "aria-label": `Replace ${card.code}`,
        onclick: () => { select(index); openForm(card, "replace"); },
      }));
    }
    li.append(actions);
    if (app.openForm && app.openForm.key === card.key) {
      li.append(app.openForm.kind === "reject" ? rejectForm(card) : replaceForm(card));
    }
  }
  return li;
}

const cardEls = () => [...list.querySelectorAll("li.code-card")];

function renderCodes() {
  const principal = principalOf();
  const groups = [
    ["Diagnoses", "diagnoses", app.codes.filter(isDiagnosis)],
    ["Procedures", "procedures", app.codes.filter((c) => !isDiagnosis(c))],
  ].filter(([, , cards]) => cards.length);
  list.classList.toggle("table", app.table);
  $("view-toggle").setAttribute("aria-pressed", app.table ? "true" : "false");
  list.replaceChildren(
    ...groups.map(([title, id, cards]) =>
      el(
        "section",
        { class: "code-group", "aria-labelledby": `group-${id}` },
        el("h3", { id: `group-${id}`, text: `${title} (${cards.length})` }),
        el("ol", { class: "code-list", "aria-labelledby": `group-${id}` }, ...cards.map((c) => cardElement(c, app.codes.indexOf(c), principal))),
      ),
    ),
  );
  const kept = app.codes.filter((c) => !DROPPED.has(c.status)).length;
  const open = app.codes.filter((c) => c.status === "pending").length;
  $("codes-summary").textContent = `${app.codes.length} codes · ${kept} kept · ${open} without a decision`;
  renderProblems();
  if (app.openForm) {
    const card = $(`card-${domKey(app.openForm.key)}`);
    const field = card && card.querySelector("[data-form] select, [data-form] input");
    if (field) field.focus();
  }
}

const NOT_PRESENT = ["negated", "family", "hypothetical"];

/** The not-present assertions (negated, family, hypothetical) of mentions overlapping a span. */
function blockedBy(docId, start, end) {
  const doc = app.docs.find((d) => d.document_id === docId);
  const flags = new Set();
  for (const m of (doc && doc.mentions) || []) {
    if (m.start >= end || m.end <= start) continue;
    for (const flag of NOT_PRESENT) if (m.assertion && m.assertion[flag]) flags.add(flag);
  }
  return [...flags];
}

const blockedEvidence = (evidence) => evidence.flatMap((e) => blockedBy(e.document_id, e.start, e.end));

function candidateAction(c) {
  if (!canEdit()) return null;
  if (c.billable === false) {
    // a header or an incomplete ICD-10-PCS code is never added as it is: complete it through the search
    return el("button", {
      type: "button", text: "Complete…", "aria-label": `Complete ${c.code} (not billable as it is)`,
      onclick: () => completeCandidate(c),
    });
  }
  return el("button", { type: "button", text: "Add", "aria-label": `Add candidate ${c.code}`, onclick: () => addCandidate(c) });
}

function renderCandidates() {
  const shown = app.candidates.filter((c) => !app.codes.some((k) => k.code === c.code));
  $("candidates").hidden = shown.length === 0;
  $("candidates-count").textContent = String(shown.length);
  $("candidate-list").replaceChildren(
    ...shown.map((c) =>
      el(
        "li",
        { dataset: { code: c.code, billable: String(c.billable) } },
        el("span", { class: "c", text: c.code }),
        el("span", { class: "t", text: c.description || "" }),
        c.billable === false ? el("span", { class: "badge incomplete", text: "not billable: complete it" }) : null,
        el("span", { text: formatPercent(c.confidence) }),
        blockedEvidence(c.evidence || []).length
          ? el("span", { class: "badge blocked", text: `${blockedEvidence(c.evidence || [])[0]} mention` })
          : null,
        candidateAction(c),
      ),
    ),
  );
}

const PROBLEM_FIX = {
  undecided: "Accept or reject each code (or press Finalize again to accept them as suggested).",
  non_billable: "Replace it with a billable code below it.",
  missing_7th_character: "Replace it with the code with its 7th character.",
  incomplete_code: "Replace it with the complete 7-character code.",
  category_with_child: "Reject the category; keep the specific code.",
};

/** The live problems of the code set: what finalize would refuse now, with reasons to override. */
function renderProblems() {
  const problems = app.problems.filter((p) => p.kind !== "undecided" || app.showOverrides);
  problemsBox.hidden = problems.length === 0 || !canEdit();
  if (problemsBox.hidden) return;
  const items = problems.map((p) => {
    const first = app.codes.findIndex((c) => p.codes.includes(c.code));
    const li = el(
      "li",
      { dataset: { problem: p.key } },
      el("button", {
        type: "button", class: "link", text: p.codes.join(" + "),
        "aria-label": `Show ${p.codes.join(" and ")}`,
        onclick: () => { if (first >= 0) select(first, true); },
      }),
      " ",
      el("span", { text: p.message }),
    );
    if (p.overridable && app.showOverrides) {
      const id = `override-${p.key.replace(/[^A-Za-z0-9]/g, "-")}`;
      li.append(
        el(
          "div",
          { class: "row" },
          el("label", { for: id, text: "Reason to override" }),
          el("input", {
            type: "text", id, name: "override", dataset: { problem: p.key }, value: overrideReasons.get(p.key) || "",
            placeholder: "why this is right for this patient",
            oninput: (event) => overrideReasons.set(p.key, event.target.value),
          }),
        ),
      );
    } else if (!p.overridable) {
      li.append(el("div", { class: "fix", text: PROBLEM_FIX[p.kind] || "Fix it before finalizing." }));
    }
    return li;
  });
  const blocking = problems.length;
  problemsBox.replaceChildren(
    el("strong", { id: "problems-title", text: `${blocking} problem${blocking > 1 ? "s" : ""} to resolve before finalizing` }),
    el("ul", { "aria-labelledby": "problems-title" }, ...items),
    ...(app.showOverrides && problems.some((p) => p.overridable)
      ? [el("button", { type: "button", class: "primary", id: "finalize-override", text: "Finalize with these reasons", onclick: finalizeWithReasons })]
      : []),
  );
}

function highlightSelected(scroll = true) {
  const card = app.codes[app.selected];
  const first = setActiveEvidence(noteBox, card ? card.key : null);
  if (scroll && first) first.scrollIntoView({ block: "center" });
}

function focusCard(index = app.selected) {
  const li = cardEls()[index];
  const button = li && li.querySelector("button.code");
  if (button) button.focus({ preventScroll: false });
}

function select(index, focus = false) {
  if (!app.codes.length) return;
  const previous = app.codes[app.selected];
  app.selected = Math.max(0, Math.min(app.codes.length - 1, index));
  const card = app.codes[app.selected];
  if (previous !== card && ((previous && DROPPED.has(previous.status)) || DROPPED.has(card.status))) {
    renderNote(noteBox, app.docs, evidenceSpans()); // dropped codes show their evidence only when selected
  }
  for (const [i, li] of cardEls().entries()) {
    li.classList.toggle("selected", i === app.selected);
    if (i === app.selected) li.setAttribute("aria-current", "true");
    else li.removeAttribute("aria-current");
  }
  const li = cardEls()[app.selected];
  if (li) li.scrollIntoView({ block: "nearest" });
  highlightSelected(true);
  if (focus) focusCard();
}

// ---- actions ------------------------------------------------------------------------------------

function openForm(card, kind) {
  if (!canEdit()) return;
  app.openForm = { key: card.key, kind };
  renderCodes();
}

function closeForm() {
  app.openForm = null;
  renderCodes();
  const card = app.codes[app.selected];
  const button = card && $(`card-${domKey(card.key)}`)?.querySelector("button.code");
  if (button) button.focus();
}

async function postDecision(decision) {
  return postDecisions([decision]);
}

async function postDecisions(decisions) {
  const out = await api("POST", `/v1/review/items/${encodeURIComponent(itemId)}/decisions`, { decisions });
  app.lastRenew = Date.now(); // a decision renews the lease on the server
  if (out && out.lease_expires_at) app.view.leaseExpiresAt = out.lease_expires_at;
  if (out && typeof out.version === "number") app.view.version = out.version;
  app.problems = (out && out.problems) || [];
  return out;
}

async function decide(card, { action, reason, replacement, replacementSystem }) {
  if (!canEdit()) return;
  if (app.busy) {
    notify("Still saving the previous decision; try again in a moment.", "error");
    return;
  }
  const decision = { action, code: card.code, system: card.system };
  if (card.rev !== null) decision.expected_rev = card.rev;
  if (action === "reject") decision.reason = reason;
  if (action === "replace") {
    decision.replacement = replacement;
    if (replacementSystem) decision.replacement_system = replacementSystem;
  }
  setBusy(true);
  try {
    const out = await postDecision(decision);
    app.openForm = null;
    app.finalizeArmed = false;
    app.cardMessage = null;
    setCodes(out.codes);
    const verb = { accept: "Accepted", reject: "Rejected", replace: "Replaced" }[action];
    notify(`${verb} ${card.code}${replacement ? ` with ${replacement}` : ""}.`, "ok");
    renderHeader();
    renderAll();
    const next = app.codes.findIndex((c, i) => i > app.selected && c.status === "pending");
    const first = app.codes.findIndex((c) => c.status === "pending");
    select(next >= 0 ? next : first >= 0 ? first : app.selected, true);
  } catch (err) {
    showError(err, card);
  } finally {
    setBusy(false);
  }
}

async function addCode(choice, evidence) {
  if (!canEdit()) return;
  if (app.busy) {
    notify("Still saving the previous decision; try again in a moment.", "error");
    return;
  }
  if (choice.billable === false) {
    notify(`${choice.code} is not billable as it is: choose a complete code below it.`, "error");
    return;
  }
  const payload = {
    action: "add",
    code: choice.code,
    evidence: evidence.map((e) => ({ document_id: e.document_id, start: e.start, end: e.end, text: e.text })),
  };
  if (choice.system) payload.system = choice.system;
  setBusy(true);
  try {
    const out = await postDecision(payload);
    setCodes(out.codes);
    const index = app.codes.findIndex((c) => c.code === choice.code || c.code.replace(".", "") === choice.code.replace(".", ""));
    if (index >= 0) app.selected = index;
    hideAddForm();
    clearSelection();
    notify(`Added ${choice.code}.`, "ok");
    renderHeader();
    renderAll();
    highlightSelected(true);
    focusCard();
  } catch (err) {
    showError(err);
  } finally {
    setBusy(false);
  }
}

function addCandidate(candidate) {
  const evidence = app.selection ? [app.selection] : candidate.evidence || [];
  if (!evidence.length) {
    notify(`Select the evidence for ${candidate.code} in the note first.`, "error");
    return;
  }
  const blocked = blockedEvidence(evidence);
  if (blocked.length) {
    notify(`The evidence of ${candidate.code} is a ${blocked[0]} mention and cannot support a code. Select other evidence in the note.`, "error");
    return;
  }
  addCode({ system: candidate.system, code: candidate.code, title: candidate.description }, evidence);
}

function completeCandidate(candidate) {
  const evidence = app.selection ? [app.selection] : candidate.evidence || [];
  if (!evidence.length) {
    notify(`Select the evidence for ${candidate.code} in the note first.`, "error");
    return;
  }
  showAddFormFor(evidence[0], candidate.code);
}

/** Accept every undecided code whose confidence is at or above the threshold, in one request; each
 * decision carries the reason "accepted in bulk: confidence at or above X%", which the audit keeps. */
async function acceptAtOrAbove() {
  if (!canEdit()) return;
  if (app.busy) {
    pendingKeys.push("A");
    return;
  }
  const pct = Number($("bulk-threshold").value);
  if (!Number.isFinite(pct) || pct < 50 || pct > 100) {
    notify("Give a threshold between 50% and 100% to accept codes in bulk.", "error");
    $("bulk-threshold").focus();
    return;
  }
  const chosen = app.codes.filter((c) => c.status === "pending" && c.confidence !== null && Math.round(c.confidence * 100) >= pct);
  if (!chosen.length) {
    notify(`No undecided code is at or above ${pct}%.`, "ok");
    return;
  }
  const reason = `accepted in bulk: confidence at or above ${pct}%`;
  setBusy(true);
  try {
    const out = await postDecisions(chosen.map((c) => ({
      action: "accept", code: c.code, system: c.system, reason, ...(c.rev !== null ? { expected_rev: c.rev } : {}),
    })));
    app.openForm = null;
    app.finalizeArmed = false;
    app.cardMessage = null;
    setCodes(out.codes);
    renderHeader();
    renderAll();
    const first = app.codes.findIndex((c) => c.status === "pending");
    select(first >= 0 ? first : app.selected, true);
    notify(`Accepted ${chosen.length} code${chosen.length > 1 ? "s" : ""} at or above ${pct}% (recorded as a bulk acceptance): ${chosen.map((c) => c.code).join(", ")}.`, "ok");
  } catch (err) {
    showError(err);
  } finally {
    setBusy(false);
  }
}

/** Finalize, then claim the next item of the queue and open it (focus on its first undecided code). */
function finalizeAndNext() {
  return finalize({}, true);
}

async function claimNextItem() {
  try {
    const claim = await api("POST", "/v1/review/claim");
    if (!claim) {
      notify("Finalized. The queue is empty: nothing more to claim.", "ok");
      return;
    }
    window.location.assign(`/ui/review/${encodeURIComponent(claim.item_id)}`);
  } catch (err) {
    showError(err);
  }
}

async function reclaim() {
  try {
    const out = await api("POST", `/v1/review/items/${encodeURIComponent(itemId)}/claim`);
    app.lastRenew = Date.now();
    app.expiredShown = false;
    app.view.leaseExpiresAt = out.lease_expires_at;
    if (await load()) {
      notify("You hold this item again.", "ok");
      focusCard();
    }
  } catch (err) {
    showError(err);
  }
}

async function finalize(extra = {}, next = false) {
  if (!canEdit()) {
    if (leaseWasMine()) notify("Your lease on this item has expired: claim it again before finalizing.", "error");
    return;
  }
  if (app.busy) {
    pendingKeys.push(next ? "F" : "f");
    return;
  }
  const open = app.codes.filter((c) => c.status === "pending").length;
  if (open && !app.finalizeArmed) {
    app.finalizeArmed = true;
    notify(`${open} code${open > 1 ? "s have" : " has"} no decision. Decide ${open > 1 ? "them" : "it"}, or press ${next ? "Shift+F" : "Finalize (f)"} again to accept ${open > 1 ? "them" : "it"} as suggested (recorded as such).`, "error");
    return;
  }
  const body = { ...extra };
  if (typeof app.view.version === "number") body.expected_version = app.view.version;
  if (open) body.accept_undecided = true;
  setBusy(true);
  let done = false;
  try {
    await api("POST", `/v1/review/items/${encodeURIComponent(itemId)}/finalize`, body);
    done = true;
  } catch (err) {
    if (err.code === "finalize_blocked") {
      app.finalizeNext = next; // "Finalize with these reasons" goes on to the next item too
      app.problems = (err.body && err.body.problems) || [];
      app.showOverrides = true;
      renderProblems();
      notify(`Not finalized: ${app.problems.length} problem${app.problems.length > 1 ? "s" : ""} to resolve (listed above the codes).`, "error");
      problemsBox.tabIndex = -1;
      problemsBox.focus();
    } else {
      showError(err);
    }
  } finally {
    app.finalizeArmed = false;
    setBusy(false);
  }
  if (!done) return;
  app.showOverrides = false;
  if (next) {
    await claimNextItem();
    return;
  }
  if (await load()) {
    notify("Finalized.", "ok");
    $("final-box").focus();
  }
}

function finalizeWithReasons() {
  const inputs = [...problemsBox.querySelectorAll("input[data-problem]")];
  const overrides = inputs.filter((i) => i.value.trim()).map((i) => ({ problem: i.dataset.problem, reason: i.value.trim() }));
  const missing = inputs.find((i) => !i.value.trim());
  if (missing) {
    notify("Give a reason for each problem you override (or fix it instead).", "error");
    missing.focus();
    return;
  }
  app.finalizeArmed = true; // the coder saw the list: undecided codes, if any, are accepted as suggested
  finalize({ overrides }, app.finalizeNext);
}

async function release() {
  if (!canEdit()) return;
  try {
    await api("POST", `/v1/review/items/${encodeURIComponent(itemId)}/release`);
    window.location.assign("/ui/queue");
  } catch (err) {
    showError(err);
  }
}

// ---- text selection -----------------------------------------------------------------------------

function codesAt(docId, start, end) {
  return app.codes.filter(
    (c) => !DROPPED.has(c.status) && c.evidence.some((e) => e.document_id === docId && e.start < end && e.end > start),
  );
}

function showSelection(range) {
  app.selection = range;
  if (!range) {
    selectionBox.hidden = true;
    return;
  }
  const here = codesAt(range.document_id, range.start, range.end);
  $("selection-text").textContent = range.text.length > 120 ? `${range.text.slice(0, 117)}…` : range.text;
  $("selection-range").textContent = `(${range.document_id}, characters ${range.start}–${range.end})`;
  $("selection-codes").replaceChildren(
    el("span", { text: here.length ? "Codes with this evidence:" : "No code uses this text yet." }),
    ...here.map((c) =>
      el("button", {
        type: "button", class: "code-chip", text: `${c.code} ${c.description}`.trim(),
        dataset: { code: c.code },
        onclick: () => select(app.codes.indexOf(c)),
      }),
    ),
  );
  const blocked = blockedBy(range.document_id, range.start, range.end);
  const warning = $("selection-blocked");
  warning.hidden = blocked.length === 0;
  warning.textContent = blocked.length ? `This text is a ${blocked.join(" / ")} mention: it cannot support a code.` : "";
  $("add-from-selection").hidden = !canEdit() || blocked.length > 0;
  selectionBox.hidden = false;
}

function clearSelection() {
  const sel = window.getSelection();
  if (sel) sel.removeAllRanges();
  showSelection(null);
}

function onNoteMouseUp(event) {
  const range = selectionRange(app.docs);
  if (range) {
    showSelection(range);
    return;
  }
  const span = event.target instanceof Element ? event.target.closest(".ev") : null;
  if (!span) return;
  const pre = span.closest(".note-text");
  const doc = app.docs.find((d) => d.document_id === pre.dataset.doc);
  const start = Number(span.dataset.start);
  const end = Number(span.dataset.end);
  showSelection({ document_id: doc.document_id, start, end, text: Array.from(doc.text).slice(start, end).join("") });
  const keys = span.dataset.codes.split(" ");
  const index = app.codes.findIndex((c) => keys.includes(c.key));
  if (index >= 0) select(index);
}

function showAddForm() {
  if (!app.selection || !canEdit()) return;
  showAddFormFor(app.selection, "");
}

function showAddFormFor(evidence, query) {
  $("add-evidence-text").textContent = evidence.text || "";
  addForm.hidden = false;
  addForm.dataset.evidence = JSON.stringify(evidence);
  $("add-search").value = query;
  addTypeahead.clear();
  if (query) addTypeahead.search();
  $("add-search").focus();
}

function addFromKeyboard(card) {
  // "+": the note text selected now (keyboard or mouse), else the selected code's first evidence, prefills
  // the search; Enter on a result adds it with that text as evidence
  if (!canEdit()) return;
  const evidence = selectionRange(app.docs) || app.selection || (card && card.evidence && card.evidence[0]);
  if (!evidence) {
    notify("Select text in the note (Shift+arrows) or a code with evidence, then press +.", "error");
    return;
  }
  showAddFormFor(evidence, evidence.text || "");
}

function hideAddForm() {
  addForm.hidden = true;
}

const addTypeahead = attachTypeahead({
  input: $("add-search"),
  list: $("add-results"),
  systemSelect: $("add-system"),
  detailPanel: $("add-detail"),
  onChoose: (choice) => addCode(choice, [JSON.parse(addForm.dataset.evidence)]),
});
attachPcsBuilder({
  button: $("pcs-build"),
  panel: $("pcs-builder"),
  onChoose: (choice) => addCode(choice, [JSON.parse(addForm.dataset.evidence)]),
});

// ---- wiring -------------------------------------------------------------------------------------

noteBox.addEventListener("mouseup", onNoteMouseUp);
noteBox.addEventListener("keyup", (event) => {
  if (event.shiftKey) showSelection(selectionRange(app.docs));
});
$("add-from-selection").addEventListener("click", showAddForm);
$("add-cancel").addEventListener("click", hideAddForm);
finalizeButton.addEventListener("click", () => finalize());
finalizeNextButton.addEventListener("click", finalizeAndNext);
$("bulk-accept").addEventListener("click", acceptAtOrAbove);
$("bulk-threshold").addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    event.preventDefault();
    acceptAtOrAbove();
  }
});
$("view-toggle").addEventListener("click", toggleView);

function toggleView() {
  app.table = !app.table;
  localStorage.setItem("medcode.view", app.table ? "table" : "cards");
  renderCodes();
  notify(app.table ? "Table view: one line per code." : "Card view.", "ok");
  focusCard();
}

// the lease renews while the coder works (any key or click), at most once per throttle period
function touchLease() {
  if (!holdsLease()) return;
  const throttle = Math.min(60_000, (leaseSeconds * 1000) / 3);
  if (Date.now() - app.lastRenew < throttle) return;
  app.lastRenew = Date.now();
  api("POST", `/v1/review/items/${encodeURIComponent(itemId)}/lease`)
    .then((out) => {
      app.view.leaseExpiresAt = out.lease_expires_at;
      $("lease-until").textContent = leaseLeft();
    })
    .catch(() => {}); // an expired or lost lease shows through the countdown
}
document.addEventListener("keydown", touchLease, true);
document.addEventListener("pointerdown", touchLease, true);
releaseButton.addEventListener("click", release);

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    if (help.open) return; // the dialog closes itself
    if (app.openForm) closeForm();
    else if (!addForm.hidden) hideAddForm();
    else if (!selectionBox.hidden) clearSelection();
    return;
  }
  if (!isTyping(event) && event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
    event.preventDefault();
    runOrQueue(event.key === "ArrowUp" ? "[" : "]");
    return;
  }
  if (isTyping(event) || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "?") {
    if (help.open) help.close();
    else help.showModal();
    event.preventDefault();
    return;
  }
  if (help.open || !app.view) return;
  if (!ACTION_KEYS.has(event.key)) return;
  event.preventDefault();
  runOrQueue(event.key);
});

function runOrQueue(key) {
  if (app.busy) {
    pendingKeys.push(key); // replayed in order when the running request ends: no key is lost
    return;
  }
  runKey(key);
}

const ACTION_KEYS = new Set(["j", "k", "a", "r", "e", "f", "F", "A", "[", "]", "p", "t", "+"]);

function runKey(key) {
  const card = app.codes[app.selected];
  switch (key) {
    case "j":
      select(app.selected + 1, true);
      break;
    case "k":
      select(app.selected - 1, true);
      break;
    case "a":
      if (card && card.status !== "accepted" && card.status !== "added") decide(card, { action: "accept" });
      break;
    case "r":
      if (card) openForm(card, "reject");
      break;
    case "e":
      if (card) openForm(card, "replace");
      break;
    case "f":
      finalize();
      break;
    case "F":
      finalizeAndNext();
      break;
    case "A":
      acceptAtOrAbove();
      break;
    case "[":
      moveSelected(-1);
      break;
    case "]":
      moveSelected(1);
      break;
    case "p":
      if (card && !isDiagnosis(card)) notify("Only a diagnosis can be the principal code.", "error");
      else moveSelected(0, true);
      break;
    case "t":
      toggleView();
      break;
    case "+":
      addFromKeyboard(card);
      break;
    default:
  }
}

function fitLayout() {
  document.documentElement.style.setProperty("--enc-bar-h", `${$("enc-bar").offsetHeight}px`);
}
window.addEventListener("resize", fitLayout);
new ResizeObserver(fitLayout).observe($("enc-bar"));

function leaseLeft() {
  const left = Math.max(0, Math.round((Date.parse(app.view.leaseExpiresAt) - Date.now()) / 1000));
  return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left`;
}

// the lease countdown; the moment the lease runs out the page re-draws: Finalize is disabled, the actions
// disappear and the message bar says why
setInterval(() => {
  if (!app.view || !itemId || app.view.status !== "open") return;
  if (holdsLease()) {
    $("lease-until").textContent = leaseLeft();
    const low = Date.parse(app.view.leaseExpiresAt) - Date.now() < 120_000;
    $("lease").classList.toggle("low", low);
  } else if (leaseWasMine() && !app.expiredShown) {
    app.expiredShown = true;
    app.openForm = null;
    renderHeader();
    renderCodes();
    notify("Your lease on this item has expired: finalizing is disabled. Claim it again to go on.", "error");
  }
}, 500);

load().then((ok) => {
  if (!ok || !canEdit() || !app.codes.length) return;
  const first = app.codes.findIndex((c) => c.status === "pending");
  select(first >= 0 ? first : 0, true); // the coder starts on the first undecided code
});
