// Typeahead over the code sets (GET /v1/codes): an ARIA combobox with a listbox of codes and titles.
import { api, el } from "./api.js";

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
 */
export function attachTypeahead({ input, list, systemSelect = null, onChoose, minChars = 2 }) {
  const prefix = `ta${++counter}`;
  let results = [];
  let active = -1;
  let timer = null;
  let seq = 0;

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
    const r = results[index];
    if (!r) return;
    if (r.billable === false) {
      // a header or an incomplete code is never chosen as it is: list the codes that complete it
      input.value = r.code;
      search();
      return;
    }
    onChoose(r);
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
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (active >= 0) choose(active);
    }
  });
  return { search, clear: () => show([], "") };
}
