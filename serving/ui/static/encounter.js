// The encounter page: the note with evidence and mentions, the code list, decisions, finalize.
// With an item id it shows a review item (GET /v1/review/items/ID) and, when the signed-in coder holds its
// lease, lets them decide; without one it shows an encounter read-only (GET /v1/encounters/ID).
import { api, el, formatPercent, isTyping, say } from "./api.js";
import { renderNote, selectionRange, setActiveEvidence } from "./note.js";
import { attachTypeahead } from "./search.js";

const root = document.getElementById("encounter-app");
const me = root.dataset.me;
let itemId = root.dataset.itemId || null;
let encounterId = root.dataset.encounterId || null;

const $ = (id) => document.getElementById(id);
const noteBox = $("note");
const list = $("code-list");
const message = $("message");
const liveStatus = $("status");
const finalizeButton = $("finalize");
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
};

const holdsLease = () =>
  Boolean(itemId) && app.view && app.view.status === "open" && app.view.leaseHolder === me &&
  (!app.view.leaseExpiresAt || Date.parse(app.view.leaseExpiresAt) > Date.now());
const canEdit = () => holdsLease();

function notify(text, kind = "") {
  say(message, text, kind);
  say(liveStatus, text);
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
  }));
  const index = app.codes.findIndex((c) => c.key === selectedKey);
  app.selected = index >= 0 ? index : Math.min(app.selected, Math.max(0, app.codes.length - 1));
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
  };
  app.docs = mergeAnnotations(item.documents || [], annotations);
  setCodes(item.codes || []);
  app.candidates = (item.result && item.result.candidates) || [];
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
  };
  app.docs = annotations.documents || [];
  const shown = enc.status === "in_review" ? enc.result.codes || [] : (enc.final_codes || []).map((c) => ({ ...c, status: "accepted", origin: c.source === "coder" ? "added" : "model" }));
  setCodes(shown);
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
    else if (!(await loadEncounter())) return;
    renderHeader();
    renderAll();
  } catch (err) {
    notify(err.message, "error");
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
  $("code-set-version").textContent = result.code_set_version || "–";
  const general = view.reasons.filter((r) => parseReason(r).codes.length === 0);
  const perCode = view.reasons.filter((r) => parseReason(r).codes.length > 0);
  $("enc-reasons").replaceChildren(
    ...general.map((r) => el("span", { class: "badge reason", text: r.replaceAll("_", " ") })),
    perCode.length ? el("span", { class: "badge reason", title: perCode.join(", "), text: `${perCode.length} code reason${perCode.length > 1 ? "s" : ""}` }) : null,
  );
  const leaseBox = $("lease");
  if (holdsLease() && view.leaseExpiresAt) {
    leaseBox.hidden = false;
    $("lease-label").textContent = "Your lease until";
    $("lease-until").textContent = new Date(view.leaseExpiresAt).toLocaleTimeString();
  } else if (itemId && view.status === "open") {
    leaseBox.hidden = false;
    $("lease-label").textContent = "Lease:";
    $("lease-until").textContent = view.leaseHolder ? "held by another coder" : "not claimed";
  } else {
    leaseBox.hidden = true;
  }
  finalizeButton.hidden = !canEdit();
  releaseButton.hidden = !canEdit();
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
  if (itemId && !canEdit()) {
    box.hidden = false;
    const why = view.status === "superseded" ? "This item was superseded by a newer revision." : "Read-only: you do not hold this item.";
    box.replaceChildren(why, " Claim an item from the ", el("a", { href: "/ui/queue", text: "review queue" }), " to code it.");
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
    const who = card.origin === "replacement" ? "replacement chosen by a coder" : "added by a coder";
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

function decisionLabel(card) {
  const text = card.status === "replaced" && card.replacedBy ? `replaced by ${card.replacedBy}` : STATUS_LABEL[card.status] || card.status;
  return el("span", { class: `decision ${card.status}`, text });
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

function cardElement(card, index) {
  const selected = index === app.selected;
  const li = el(
    "li",
    {
      class: `code-card${selected ? " selected" : ""}`,
      id: `card-${domKey(card.key)}`,
      "aria-current": selected ? "true" : null,
      dataset: { key: card.key, code: card.code, status: card.status, origin: card.origin },
    },
    el(
      "div",
      { class: "line1" },
      el("button", {
        type: "button", class: "code", text: card.code,
        "aria-label": `Select ${card.code} and show its evidence`,
        onclick: () => select(index),
      }),
      el("span", { class: "system", text: card.system }),
      decisionLabel(card),
      el("span", { class: "desc", text: card.description || "(no description)" }),
    ),
    confidenceBar(card),
    card.rationale ? el("p", { class: "rationale", text: card.rationale }) : null,
    card.reasons.length
      ? el("div", { class: "tags", "aria-label": "Routing reasons" }, ...card.reasons.map((r) => el("span", { class: "badge reason", text: parseReason(r).kind.replaceAll("_", " ") })))
      : null,
    ...card.warnings.map((w) => el("div", { class: "warning", role: "note", text: warningText(w) })),
    card.status === "rejected" && card.reason ? el("div", { class: "replaced-by", text: `Reason: ${card.reason}` }) : null,
    card.evidence.length === 0 ? el("div", { class: "rationale", text: "No evidence span in the note." }) : null,
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

function renderCodes() {
  list.replaceChildren(...app.codes.map(cardElement));
  const kept = app.codes.filter((c) => !DROPPED.has(c.status)).length;
  const open = app.codes.filter((c) => c.status === "pending").length;
  $("codes-summary").textContent = `${app.codes.length} codes · ${kept} kept · ${open} without a decision`;
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

function renderCandidates() {
  const shown = app.candidates.filter((c) => !app.codes.some((k) => k.code === c.code));
  $("candidates").hidden = shown.length === 0;
  $("candidates-count").textContent = String(shown.length);
  $("candidate-list").replaceChildren(
    ...shown.map((c) =>
      el(
        "li",
        {},
        el("span", { class: "c", text: c.code }),
        el("span", { class: "t", text: c.description || "" }),
        el("span", { text: formatPercent(c.confidence) }),
        blockedEvidence(c.evidence || []).length
          ? el("span", { class: "badge blocked", text: `${blockedEvidence(c.evidence || [])[0]} mention` })
          : null,
        canEdit() ? el("button", { type: "button", text: "Add", "aria-label": `Add candidate ${c.code}`, onclick: () => addCandidate(c) }) : null,
      ),
    ),
  );
}

function highlightSelected(scroll = true) {
  const card = app.codes[app.selected];
  const first = setActiveEvidence(noteBox, card ? card.key : null);
  if (scroll && first) first.scrollIntoView({ block: "center" });
}

function select(index) {
  if (!app.codes.length) return;
  const previous = app.codes[app.selected];
  app.selected = Math.max(0, Math.min(app.codes.length - 1, index));
  const card = app.codes[app.selected];
  if (previous !== card && ((previous && DROPPED.has(previous.status)) || DROPPED.has(card.status))) {
    renderNote(noteBox, app.docs, evidenceSpans()); // dropped codes show their evidence only when selected
  }
  for (const [i, li] of [...list.children].entries()) {
    li.classList.toggle("selected", i === app.selected);
    if (i === app.selected) li.setAttribute("aria-current", "true");
    else li.removeAttribute("aria-current");
  }
  const li = list.children[app.selected];
  if (li) li.scrollIntoView({ block: "nearest" });
  highlightSelected(true);
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
  const out = await api("POST", `/v1/review/items/${encodeURIComponent(itemId)}/decisions`, { decisions: [decision] });
  if (out && out.lease_expires_at) app.view.leaseExpiresAt = out.lease_expires_at;
  return out;
}

async function decide(card, { action, reason, replacement, replacementSystem }) {
  if (!canEdit() || app.busy) return;
  const decision = { action, code: card.code, system: card.system };
  if (action === "reject") decision.reason = reason;
  if (action === "replace") {
    decision.replacement = replacement;
    if (replacementSystem) decision.replacement_system = replacementSystem;
  }
  app.busy = true;
  try {
    const out = await postDecision(decision);
    app.openForm = null;
    app.finalizeArmed = false;
    setCodes(out.codes);
    const verb = { accept: "Accepted", reject: "Rejected", replace: "Replaced" }[action];
    notify(`${verb} ${card.code}${replacement ? ` with ${replacement}` : ""}.`, "ok");
    renderHeader();
    renderAll();
    const next = app.codes.findIndex((c, i) => i > app.selected && c.status === "pending");
    select(next >= 0 ? next : app.selected);
  } catch (err) {
    notify(err.message, "error");
  } finally {
    app.busy = false;
  }
}

async function addCode(choice, evidence) {
  if (!canEdit() || app.busy) return;
  const payload = {
    action: "add",
    code: choice.code,
    evidence: evidence.map((e) => ({ document_id: e.document_id, start: e.start, end: e.end, text: e.text })),
  };
  if (choice.system) payload.system = choice.system;
  app.busy = true;
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
  } catch (err) {
    notify(err.message, "error");
  } finally {
    app.busy = false;
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

async function finalize() {
  if (!canEdit() || app.busy) return;
  const open = app.codes.filter((c) => c.status === "pending").length;
  if (open && !app.finalizeArmed) {
    app.finalizeArmed = true;
    notify(`${open} code${open > 1 ? "s have" : " has"} no decision and will be kept as suggested. Press Finalize (f) again to finalize.`, "error");
    return;
  }
  app.busy = true;
  try {
    await api("POST", `/v1/review/items/${encodeURIComponent(itemId)}/finalize`);
    app.busy = false;
    await // a lease runs out while the page is open: re-draw so the actions disappear and the banner says why
setInterval(() => {
  if (app.view && itemId && app.view.status === "open" && !holdsLease() && !finalizeButton.hidden) {
    renderHeader();
    renderCodes();
    notify("Your lease on this item has expired. Claim again from the review queue.", "error");
  }
}, 15000);

load();
    notify("");
    $("final-box").focus();
  } catch (err) {
    notify(err.message, "error");
  } finally {
    app.busy = false;
    app.finalizeArmed = false;
  }
}

async function release() {
  if (!canEdit()) return;
  try {
    await api("POST", `/v1/review/items/${encodeURIComponent(itemId)}/release`);
    window.location.assign("/ui/queue");
  } catch (err) {
    notify(err.message, "error");
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
  $("add-evidence-text").textContent = app.selection.text;
  addForm.hidden = false;
  addForm.dataset.evidence = JSON.stringify(app.selection);
  $("add-search").value = "";
  addTypeahead.clear();
  $("add-search").focus();
}

function hideAddForm() {
  addForm.hidden = true;
}

const addTypeahead = attachTypeahead({
  input: $("add-search"),
  list: $("add-results"),
  systemSelect: $("add-system"),
  onChoose: (choice) => addCode(choice, [JSON.parse(addForm.dataset.evidence)]),
});

// ---- wiring -------------------------------------------------------------------------------------

noteBox.addEventListener("mouseup", onNoteMouseUp);
noteBox.addEventListener("keyup", (event) => {
  if (event.shiftKey) showSelection(selectionRange(app.docs));
});
$("add-from-selection").addEventListener("click", showAddForm);
$("add-cancel").addEventListener("click", hideAddForm);
finalizeButton.addEventListener("click", finalize);
releaseButton.addEventListener("click", release);

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    if (help.open) return; // the dialog closes itself
    if (app.openForm) closeForm();
    else if (!addForm.hidden) hideAddForm();
    else if (!selectionBox.hidden) clearSelection();
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
  const card = app.codes[app.selected];
  switch (event.key) {
    case "j":
      select(app.selected + 1);
      break;
    case "k":
      select(app.selected - 1);
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
    default:
      return;
  }
  event.preventDefault();
});

function fitLayout() {
  document.documentElement.style.setProperty("--enc-bar-h", `${$("enc-bar").offsetHeight}px`);
}
window.addEventListener("resize", fitLayout);
new ResizeObserver(fitLayout).observe($("enc-bar"));

// a lease runs out while the page is open: re-draw so the actions disappear and the banner says why
setInterval(() => {
  if (app.view && itemId && app.view.status === "open" && !holdsLease() && !finalizeButton.hidden) {
    renderHeader();
    renderCodes();
    notify("Your lease on this item has expired. Claim again from the review queue.", "error");
  }
}, 15000);

load();
