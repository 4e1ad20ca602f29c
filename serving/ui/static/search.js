// Typeahead over the code sets (GET /v1/codes): an ARIA combobox with a listbox of codes and titles.
import { api, el } from "./api.js";
import { fetchCodeDetail, renderCodeDetail } from "./lookup.js";

let counter = 0;

export function resultsOf(data) {
  const rows = Array.isArray(data) ? data : (data && (data.hits || data.results || data.codes || data.items)) || [];
  return rows.map((r) => ({
    system: r.system || "",
    code: r.code,
    title: r.title || r.description || "",
    billable: r.billable,
  }));
}

/**
 * Wire a search input, an optional system <select> and a listbox <ul>.
 * onChoose({system, code, title}) is called when the coder picks a code (click or Enter).
 * With a `detailPanel`, the active result's tabular detail (path, notes, children, 7th characters) shows
 * there as the coder arrows through the results; ArrowRight (or Ctrl+Enter) moves focus into it.
 */
export function attachTypeahead({ input, list, systemSelect = null, onChoose, minChars = 2, detailPanel = null }) {
  const prefix = `ta${++counter}`;
  let results = [];
  let active = -1;
  let timer = null;
  let seq = 0;
  let detailTimer = null;
  let detailSeq = 0;

  function pick(r) {
    if (r.billable === false) {
      // a header or an incomplete code is never chosen as it is: list the codes that complete it
      input.value = r.code;
      input.focus();
      search();
      return;
    }
    onChoose(r);
  }

  function showDetail() {
    if (!detailPanel) return;
    clearTimeout(detailTimer);
    const r = results[active];
    if (!r) {
      detailPanel.hidden = true;
      detailPanel.replaceChildren();
      return;
    }
    const mine = ++detailSeq;
    detailTimer = setTimeout(async () => {
      try {
        const detail = await fetchCodeDetail(r.system, r.code);
        if (mine === detailSeq) renderCodeDetail(detailPanel, detail, pick);
      } catch (err) {
        if (mine === detailSeq) {
          detailPanel.replaceChildren(el("p", { class: "meta", text: `No detail for ${r.code}: ${err.message}` }));
          detailPanel.hidden = false;
        }
      }
    }, 120);
  }

  function setActive(index) {
    active = index;
    [...list.children].forEach((li, i) => li.setAttribute("aria-selected", i === active ? "true" : "false"));
    const current = list.children[active];
    if (current) {
      input.setAttribute("aria-activedescendant", current.id);
      current.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
    showDetail();
  }

  function show(rows, query) {
    results = rows;
    list.replaceChildren(
      ...rows.map((r, i) =>
        el(
          "li",
          {
            role: "option",
            id: `${prefix}-opt-${i}`,
            "aria-selected": "false",
            dataset: { code: r.code, system: r.system, billable: String(r.billable) },
            onmousedown: (event) => event.preventDefault(),
            onclick: () => choose(i),
          },
          el("span", { class: "c", text: r.code }),
          el("span", { class: "t", text: r.title }),
          r.billable === false ? el("span", { class: "nb", text: "not billable: shows the codes below it" }) : null,
          el("span", { class: "s", text: r.system }),
        ),
      ),
    );
    if (!rows.length && query) {
      list.replaceChildren(el("li", { role: "option", "aria-disabled": "true", text: `No code matches "${query}"` }));
      results = [];
    }
    input.setAttribute("aria-expanded", rows.length ? "true" : "false");
    setActive(rows.length ? 0 : -1);
  }

  async function search() {
    const q = input.value.trim();
    if (q.length < minChars) {
      show([], "");
      return;
    }
    const mine = ++seq;
    const params = new URLSearchParams({ q, limit: "20" });
    if (systemSelect && systemSelect.value) params.set("system", systemSelect.value);
    try {
      const data = await api("GET", `/v1/codes?${params}`);
      if (mine === seq) show(resultsOf(data), q);
    } catch (err) {
      if (mine === seq) {
        list.replaceChildren(el("li", { role: "option", "aria-disabled": "true", text: err.message }));
      }
    }
  }

  function choose(index) {
    if (results[index]) pick(results[index]);
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 180);
  });
  if (systemSelect) systemSelect.addEventListener("change", search);
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      if (results.length) setActive((active + 1) % results.length);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      if (results.length) setActive((active - 1 + results.length) % results.length);
    } else if (event.key === "Enter" && event.ctrlKey && detailPanel) {
      event.preventDefault();
      focusDetail();
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (active >= 0) choose(active);
    } else if (event.key === "ArrowRight" && detailPanel && input.selectionStart === input.value.length) {
      if (focusDetail()) event.preventDefault();
    }
  });
  if (detailPanel) {
    detailPanel.addEventListener("keydown", (event) => {
      if (event.key === "ArrowLeft" || event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        input.focus();
      } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        const buttons = [...detailPanel.querySelectorAll("button")];
        const at = buttons.indexOf(document.activeElement);
        if (at < 0) return;
        event.preventDefault();
        const next = buttons[(at + (event.key === "ArrowDown" ? 1 : -1) + buttons.length) % buttons.length];
        next.focus();
      }
    });
  }

  function focusDetail() {
    const first = detailPanel && !detailPanel.hidden ? detailPanel.querySelector("button") : null;
    if (first) first.focus();
    return Boolean(first);
  }
  return { search, clear: () => show([], "") };
}
