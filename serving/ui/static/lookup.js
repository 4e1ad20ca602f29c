// The code detail panel beside the code search (GET /v1/codes/{system}/{code}): where the code sits in the
// tabular, its notes (Includes, Excludes1/2, Code first, Use additional, Code also), the codes that complete
// a header and its 7th characters. Every code in the panel is a button: Enter or a click picks it.
import { api, el } from "./api.js";

const NOTE_LABELS = {
  inclusion: "Inclusion terms",
  includes: "Includes",
  excludes1: "Excludes1 (never together)",
  excludes2: "Excludes2 (not included here)",
  code_first: "Code first",
  use_additional: "Use additional code",
  code_also: "Code also",
};

export async function fetchCodeDetail(system, code) {
  return api("GET", `/v1/codes/${encodeURIComponent(system)}/${encodeURIComponent(code)}`);
}

function codeButton(ref, system, onPick) {
  return el(
    "button",
    {
      type: "button",
      class: "detail-code",
      dataset: { code: ref.code, billable: String(ref.billable) },
      onclick: () => onPick({ system, code: ref.code, title: ref.title, billable: ref.billable }),
    },
    el("span", { class: "c", text: ref.code }),
    " ",
    el("span", { class: "t", text: ref.title }),
    ref.billable === false ? el("span", { class: "nb", text: " (not billable)" }) : null,
  );
}

/** Fill `panel` with a code's detail; onPick({system, code, title, billable}) when the coder picks a code. */
export function renderCodeDetail(panel, detail, onPick) {
  const heading = el(
    "h3",
    { id: `${panel.id}-title` },
    el("span", { class: "c", text: detail.code }),
    " ",
    detail.title,
    el("span", { class: detail.billable ? "billable" : "nb", text: detail.billable ? " billable" : " not billable" }),
  );
  const path = detail.path.length
    ? el(
        "ol",
        { class: "detail-path", "aria-label": "Place in the tabular" },
        detail.path.map((step) =>
          el("li", { dataset: { level: step.level } }, el("span", { class: "c", text: step.code }), " ", step.title),
        ),
      )
    : null;
  const groups = Object.keys(NOTE_LABELS)
    .map((kind) => [kind, detail.notes.filter((n) => n.kind === kind)])
    .filter(([, notes]) => notes.length)
    .map(([kind, notes]) =>
      el(
        "section",
        { class: `detail-notes note-${kind}`, dataset: { kind } },
        el("h4", { text: NOTE_LABELS[kind] }),
        el(
          "ul",
          {},
          notes.map((n) =>
            el("li", {}, n.text, n.where !== detail.code ? el("span", { class: "where", text: ` (at ${n.where})` }) : null),
          ),
        ),
      ),
    );
  const children = detail.children.length
    ? el(
        "section",
        { class: "detail-children" },
        el("h4", { text: detail.billable ? "Codes below it" : "Complete the code" }),
        el(
          "ul",
          {},
          detail.children.map((c) => el("li", {}, codeButton(c, detail.system, onPick))),
        ),
      )
    : null;
  const sevenths = detail.seventh_characters.length
    ? el(
        "section",
        { class: "detail-seventh" },
        el("h4", { text: "7th character" }),
        detail.seventh_character_note ? el("p", { class: "meta", text: detail.seventh_character_note }) : null,
        el(
          "table",
          {},
          el("tbody", {}, detail.seventh_characters.map((s) =>
            el(
              "tr",
              {},
              el("td", { class: "c", text: s.character }),
              el(
                "td",
                {},
                s.code ? codeButton({ code: s.code, title: s.meaning, billable: true }, detail.system, onPick) : s.meaning,
              ),
            ),
          )),
        ),
      )
    : null;
  panel.replaceChildren(heading, path, ...groups, children, sevenths);
  panel.setAttribute("aria-labelledby", heading.id);
  panel.hidden = false;
}

/**
 * The ICD-10-PCS builder (GET /v1/pcs/builder): one axis at a time (section, body system, operation, body
 * part, approach, device, qualifier), offering only the values some valid code continues with. Enter or a
 * click picks a value, Backspace goes back one axis; the complete code is added with Enter.
 */
export function attachPcsBuilder({ button, panel, onChoose }) {
  let prefix = "";

  async function load(next) {
    try {
      const step = await api("GET", `/v1/pcs/builder?${new URLSearchParams({ prefix: next })}`);
      prefix = step.prefix;
      render(step);
    } catch (err) {
      panel.replaceChildren(el("p", { class: "meta", role: "alert", text: `ICD-10-PCS builder: ${err.message}` }));
    }
  }

  function render(step) {
    const slots = Array.from({ length: 7 }, (_, i) => prefix[i] || "_").join(" ");
    const heading = el("h3", { id: "pcs-builder-title" }, "ICD-10-PCS builder ", el("span", { class: "c", text: slots }));
    const chosen = step.chosen.length
      ? el("ol", { class: "detail-path", "aria-label": "Chosen so far" }, step.chosen.map((label, i) => el("li", {}, el("span", { class: "c", text: prefix[i] }), " ", label)))
      : null;
    const back = el("button", {
      type: "button",
      class: "pcs-back",
      disabled: !prefix,
      text: "Back one axis",
      onclick: () => load(prefix.slice(0, -1)),
    });
    let body;
    if (step.complete) {
      body = el(
        "div",
        { class: "pcs-done" },
        el("p", {}, el("span", { class: "c", text: step.prefix }), " ", step.title || ""),
        el("button", {
          type: "button",
          class: "primary pcs-add",
          text: `Add ${step.prefix}`,
          onclick: () => onChoose({ system: "ICD-10-PCS", code: step.prefix, title: step.title || "", billable: true }),
        }),
      );
    } else {
      body = el(
        "fieldset",
        { class: "pcs-options" },
        el("legend", { text: `Character ${step.position}: ${step.axis || "value"}` }),
        step.options.map((o) =>
          el(
            "button",
            { type: "button", class: "detail-code pcs-option", dataset: { char: o.character }, onclick: () => load(prefix + o.character) },
            el("span", { class: "c", text: o.character }),
            " ",
            o.label || "(no label in this release)",
          ),
        ),
      );
    }
    panel.replaceChildren(heading, chosen, body, back);
    panel.setAttribute("aria-labelledby", heading.id);
    const first = panel.querySelector(".pcs-add, .pcs-option");
    if (first) first.focus();
  }

  button.addEventListener("click", () => {
    const open = panel.hidden;
    panel.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) load("");
  });
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Backspace" && prefix) {
      event.preventDefault();
      load(prefix.slice(0, -1));
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const buttons = [...panel.querySelectorAll(".pcs-option")];
      const at = buttons.indexOf(document.activeElement);
      if (at < 0) return;
      event.preventDefault();
      buttons[(at + (event.key === "ArrowDown" ? 1 : -1) + buttons.length) % buttons.length].focus();
    }
  });
}
