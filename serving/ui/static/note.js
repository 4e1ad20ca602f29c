// Renders note text with sections, mentions (by assertion) and code evidence, and maps a text selection
// back to character offsets into the ORIGINAL document text. Offsets from the server count Unicode code
// points (Python str indices); JavaScript strings count UTF-16 units, so we slice by code point.
import { el } from "./api.js";

const ASSERTION_ORDER = [
  ["negated", "negated"],
  ["family", "family"],
  ["hypothetical", "hypothetical"],
  ["possible", "possible"],
  ["historical", "history"],
];

export function assertionOf(mention) {
  const a = mention.assertion || {};
  for (const [flag, label] of ASSERTION_ORDER) if (a[flag]) return { flag, label };
  return { flag: "present", label: "" };
}

const rank = (flag) => {
  const i = ASSERTION_ORDER.findIndex(([f]) => f === flag);
  return i < 0 ? ASSERTION_ORDER.length : i;
};

export const codePoints = (text) => Array.from(text);
export const cpLength = (s) => Array.from(s).length;

function boundaries(n, doc, spans) {
  const set = new Set([0, n]);
  const add = (x) => set.add(Math.max(0, Math.min(n, x)));
  for (const s of doc.sections || []) {
    add(s.start);
    if (typeof s.header_end === "number") add(s.header_end);
  }
  for (const m of doc.mentions || []) {
    add(m.start);
    add(m.end);
  }
  for (const s of spans) {
    add(s.start);
    add(s.end);
  }
  return [...set].sort((a, b) => a - b);
}

function sectionLabel(section) {
  return section.label || section.title || section.name || "section";
}

const squash = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, "");

/** A section chip, unless it would only repeat the header written in the note. */
function needsChip(section, cps) {
  if (typeof section.header_end !== "number") return true;
  return squash(cps.slice(section.start, section.header_end).join("")) !== squash(sectionLabel(section));
}

/**
 * Render one document. `spans` are the code evidence in this document: {key, start, end, added}.
 * Every piece of text lives in a <span data-start data-end> so a selection maps back to offsets.
 */
export function renderDocument(doc, spans) {
  const cps = codePoints(doc.text || "");
  const n = cps.length;
  const cuts = boundaries(n, doc, spans);
  const mentions = doc.mentions || [];
  const sectionsAt = new Map((doc.sections || []).map((s) => [s.start, s]));
  const heads = (doc.sections || []).filter((s) => typeof s.header_end === "number");
  const pre = el("div", {
    class: "note-text",
    dataset: { doc: doc.document_id, length: String(n) },
    "aria-label": `Text of ${doc.type || "note"} ${doc.document_id}`,
  });
  for (let i = 0; i + 1 < cuts.length; i++) {
    const a = cuts[i];
    const b = cuts[i + 1];
    const section = sectionsAt.get(a);
    if (section && needsChip(section, cps)) {
      pre.append(el("span", { class: "section-label", "data-section": section.name || "", text: sectionLabel(section) }));
    }
    if (b <= a) continue;
    const span = el("span", { class: "seg", dataset: { start: String(a), end: String(b) } });
    span.textContent = cps.slice(a, b).join("");
    const head = heads.find((s) => s.start <= a && s.header_end >= b);
    if (head) {
      span.classList.add("section-head");
      span.dataset.section = head.name || "";
    }
    const covering = mentions.filter((m) => m.start <= a && m.end >= b && m.end > m.start);
    const titles = [];
    if (covering.length) {
      const strongest = covering.map(assertionOf).sort((x, y) => rank(x.flag) - rank(y.flag))[0];
      span.classList.add("m", `m-${strongest.flag}`);
      const ending = covering.filter((m) => m.end === b).map(assertionOf);
      const endLabel = ending.sort((x, y) => rank(x.flag) - rank(y.flag))[0];
      if (endLabel && endLabel.label) {
        span.classList.add("m-end");
        span.dataset.label = endLabel.label;
      }
      span.dataset.assertion = strongest.flag;
      titles.push(`${strongest.flag === "present" ? "" : `${strongest.flag} `}mention`);
    }
    const keys = spans.filter((s) => s.start <= a && s.end >= b && s.end > s.start);
    if (keys.length) {
      span.classList.add("ev");
      if (keys.some((s) => s.added)) span.classList.add("added");
      span.dataset.codes = [...new Set(keys.map((s) => s.key))].join(" ");
      titles.push(`evidence for ${[...new Set(keys.map((s) => s.label || s.key))].join(", ")}`);
    }
    if (titles.length) span.title = titles.join("; ");
    pre.append(span);
  }
  return pre;
}

export function renderNote(container, docs, spansByDoc) {
  container.replaceChildren(
    ...docs.map((doc) =>
      el(
        "article",
        { class: "doc", "aria-label": `Document ${doc.document_id}` },
        el("h3", { class: "doc-title", text: `${doc.type || "note"} · ${doc.document_id}` }),
        renderDocument(doc, spansByDoc.get(doc.document_id) || []),
      ),
    ),
  );
}

function segmentOf(node) {
  const element = node.nodeType === Node.TEXT_NODE ? node.parentElement : node;
  return element ? element.closest(".seg") : null;
}

function firstSegmentFrom(container, child) {
  for (let node = child; node; node = node.nextSibling) {
    if (node.classList && node.classList.contains("seg")) return node;
  }
  return null;
}

/** The code-point offset in the original text of a DOM point (node, offset) inside a .note-text. */
export function pointToOffset(pre, node, offset) {
  const n = Number(pre.dataset.length);
  if (node === pre) {
    const seg = firstSegmentFrom(pre, pre.childNodes[offset] || null);
    return seg ? Number(seg.dataset.start) : n;
  }
  const seg = segmentOf(node);
  if (seg && pre.contains(seg)) {
    const start = Number(seg.dataset.start);
    if (node.nodeType === Node.TEXT_NODE) return start + cpLength(node.data.slice(0, offset));
    return offset === 0 ? start : Number(seg.dataset.end);
  }
  // Inside a section label (not document text): it sits right before the next segment.
  const label = (node.nodeType === Node.TEXT_NODE ? node.parentElement : node)?.closest(".section-label");
  if (label) {
    const next = firstSegmentFrom(pre, label.nextSibling);
    return next ? Number(next.dataset.start) : n;
  }
  return null;
}

/** The current selection as {document_id, start, end, text} in original-text offsets, or null. */
export function selectionRange(docs) {
  const sel = window.getSelection();
  if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
  const range = sel.getRangeAt(0);
  const startEl = range.startContainer.nodeType === Node.TEXT_NODE ? range.startContainer.parentElement : range.startContainer;
  const endEl = range.endContainer.nodeType === Node.TEXT_NODE ? range.endContainer.parentElement : range.endContainer;
  const pre = startEl && startEl.closest(".note-text");
  if (!pre || !endEl || endEl.closest(".note-text") !== pre) return null;
  let start = pointToOffset(pre, range.startContainer, range.startOffset);
  let end = pointToOffset(pre, range.endContainer, range.endOffset);
  if (start === null || end === null) return null;
  if (end < start) [start, end] = [end, start];
  const doc = docs.find((d) => d.document_id === pre.dataset.doc);
  if (!doc) return null;
  const cps = codePoints(doc.text);
  while (start < end && /\s/u.test(cps[start])) start++;
  while (end > start && /\s/u.test(cps[end - 1])) end--;
  if (end <= start) return null;
  return { document_id: doc.document_id, start, end, text: cps.slice(start, end).join("") };
}

export function setActiveEvidence(container, key) {
  let first = null;
  for (const span of container.querySelectorAll(".ev")) {
    const on = key !== null && span.dataset.codes.split(" ").includes(key);
    span.classList.toggle("active", on);
    if (on && !first) first = span;
  }
  return first;
}
