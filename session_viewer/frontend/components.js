/*
 * Pure render functions of the Session Viewer: data in, DOM nodes out, no state, no I/O.
 *
 * Safety rule: stored content (messages, metadata, comments, ids) only ever reaches the page as
 * text (textContent) or, for message text, as Markdown rendered by marked and then sanitised by
 * DOMPurify. Nothing here assigns innerHTML from unsanitised strings, so stored content can never
 * run script in the viewer.
 */
(function (global) {
  "use strict";

  // ---- DOM helpers -----------------------------------------------------------------------------

  /** el("div", {class: "x", dataset: {id: 1}}, child, "text") -> element. Strings become text nodes. */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key in node && typeof value !== "string") node[key] = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** Show or hide with Tailwind's `hidden` class (the hidden attribute loses against `flex`/`grid`). */
  function setVisible(node, visible, displayClass) {
    node.classList.toggle("hidden", !visible);
    if (displayClass) node.classList.toggle(displayClass, visible);
  }

  // ---- formatting --------------------------------------------------------------------------------

  /** The browser's time zone, e.g. {name: "Europe/Berlin", short: "GMT+1"}: every time shown is in it. */
  function timeZone(at) {
    let name = "local time";
    let short = "";
    try {
      name = Intl.DateTimeFormat().resolvedOptions().timeZone || name;
      const parts = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" }).formatToParts(at || new Date());
      short = (parts.find((part) => part.type === "timeZoneName") || {}).value || "";
    } catch (error) {
      /* no Intl time zone support: the name stays generic */
    }
    return { name, short };
  }

  /** A stored UTC time in the browser's zone, with the zone named ("2026-12-01 13:15:16 GMT+1"). */
  function formatDate(iso) {
    if (!iso) return "—";
    const value = global.dayjs ? global.dayjs(iso) : null;
    if (!value || !value.isValid()) return String(iso);
    const zone = timeZone(value.toDate()).short;
    return zone ? `${value.format("YYYY-MM-DD HH:mm:ss")} ${zone}` : value.format("YYYY-MM-DD HH:mm:ss");
  }

  function formatRelative(iso) {
    if (!iso || !global.dayjs || typeof global.dayjs().fromNow !== "function") return "";
    const value = global.dayjs(iso);
    return value.isValid() ? value.fromNow() : "";
  }

  function formatNumber(value) {
    const number = Number(value);
    return Number.isFinite(number) ? number.toLocaleString("en-US") : "—";
  }

  function formatDuration(ms) {
    const number = Number(ms);
    if (!Number.isFinite(number)) return "—";
    return number >= 1000 ? `${(number / 1000).toFixed(2)} s` : `${Math.round(number)} ms`;
  }

  function plural(count, one, many) {
    return `${formatNumber(count)} ${Number(count) === 1 ? one : many || `${one}s`}`;
  }

  function formatValue(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function pretty(value) {
    return typeof value === "string" ? value : JSON.stringify(value, null, 2);
  }

  // ---- markdown ----------------------------------------------------------------------------------

  const PURIFY_OPTIONS = {
    USE_PROFILES: { html: true },
    FORBID_TAGS: ["style", "img", "form", "input", "button", "textarea", "select", "iframe", "video", "audio"],
    FORBID_ATTR: ["style"],
  };
  let markdown = null;

  function escapeHtml(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  /** One marked instance that shows raw HTML in a message as the text it is, instead of as markup. */
  function markdownParser() {
    if (!markdown) {
      markdown = new global.marked.Marked({
        gfm: true,
        breaks: true,
        renderer: { html: (token) => escapeHtml(token.text) },
      });
      global.DOMPurify.addHook("afterSanitizeAttributes", (node) => {
        if (node.tagName === "A") {
          node.setAttribute("target", "_blank");
          node.setAttribute("rel", "noopener noreferrer nofollow");
        }
      });
    }
    return markdown;
  }

  /**
   * Markdown -> HTML in a container. Raw HTML in the text is escaped (a user who typed "<b>" sees
   * "<b>"), and the result is sanitised by DOMPurify anyway (it drops javascript: links, handlers,
   * images, forms and frames). Links open in a new tab without a referrer.
   */
  function renderMarkdown(text) {
    const container = el("div", { class: "markdown" });
    const source = String(text || "");
    if (!global.marked || !global.DOMPurify) {
      container.textContent = source; // never fall back to unsanitised HTML
      return container;
    }
    const html = markdownParser().parse(source, { async: false });
    container.innerHTML = global.DOMPurify.sanitize(html, PURIFY_OPTIONS);
    return container;
  }

  // ---- small pieces ------------------------------------------------------------------------------

  function badge(text, tone, extra) {
    return el("span", {
      class: `inline-flex items-center rounded-full border border-transparent px-2 py-0.5 text-xs font-medium ${tone || "bg-slate-100 text-slate-700"}`,
      text,
      ...(extra || {}),
    });
  }

  function chip(label, value, title) {
    return el(
      "span",
      { class: "inline-flex max-w-full items-center gap-1 rounded-md bg-slate-100 px-1.5 py-0.5 text-xs text-slate-600", title: title || null },
      el("span", { class: "text-slate-400", text: label }),
      el("span", { class: "truncate font-medium text-slate-700", text: value }),
    );
  }

  function stat(label, value, key) {
    return el(
      "div",
      { class: "rounded-lg bg-slate-50 px-3 py-2 ring-1 ring-slate-200", dataset: { stat: key || label } },
      el("dt", { class: "text-xs uppercase tracking-wide text-slate-400", text: label }),
      el("dd", { class: "stat-value text-lg font-semibold text-slate-800", text: value }),
    );
  }

  function section(title, ...children) {
    return el(
      "section",
      { class: "rounded-xl bg-white p-5 shadow-sm ring-1 ring-slate-200" },
      el("h3", { class: "mb-3 text-sm font-semibold uppercase tracking-wide text-slate-500", text: title }),
      ...children,
    );
  }

  function renderHealth(state) {
    const states = {
      ok: ["bg-emerald-500", "Connected"],
      degraded: ["bg-amber-500", "Database unreachable"],
      offline: ["bg-rose-500", "Backend offline"],
      unknown: ["bg-slate-300", "Checking…"],
    };
    const [dot, text] = states[state] || states.unknown;
    return { dotClass: `h-2.5 w-2.5 rounded-full ${dot}`, text };
  }

  // ---- filters -----------------------------------------------------------------------------------

  function fieldOption(field) {
    return el("option", { value: field.field, text: `${field.label}${field.type === "enum" ? "" : ` (${field.type})`}` });
  }

  /** One metadata filter row: the control depends on the field's type; values stay typed. */
  function renderFilterRow(field, rowId) {
    let control;
    if (field.type === "enum" || field.type === "boolean") {
      const values = field.type === "boolean" ? [true, false] : field.values || [];
      control = el(
        "select",
        { class: "input filter-value", "aria-label": `Value for ${field.label}` },
        values.map((value, index) => el("option", { value: String(index), text: formatValue(value) })),
      );
    } else if (field.type === "number") {
      control = el("input", { class: "input filter-value", type: "number", step: "any", "aria-label": `Value for ${field.label}` });
    } else {
      control = el("input", { class: "input filter-value", type: "text", placeholder: "contains…", "aria-label": `Value for ${field.label}` });
    }
    return el(
      "div",
      { class: "filter-row rounded-lg border border-slate-200 bg-slate-50 p-2", dataset: { field: field.field, rowId } },
      el(
        "div",
        { class: "mb-1 flex items-center justify-between" },
        el("span", { class: "text-xs font-semibold text-slate-600", text: field.label }),
        el("button", { type: "button", class: "remove-filter text-xs text-slate-400 hover:text-rose-600", title: "Remove filter", text: "Remove" }),
      ),
      control,
    );
  }

  // ---- results -----------------------------------------------------------------------------------

  function renderEmpty(text) {
    return el("div", { class: "empty-state", text });
  }

  function renderError(text) {
    return el("div", { class: "rounded-lg bg-rose-50 p-3 text-sm text-rose-700", role: "alert", text });
  }

  function renderLoading(text) {
    return el("div", { class: "animate-pulse p-4 text-sm text-slate-400", text: text || "Loading…" });
  }

  global.SessionViewerComponents = Object.freeze({
    el,
    append,
    setVisible,
    formatDate,
    formatRelative,
    formatNumber,
    formatDuration,
    formatValue,
    plural,
    renderMarkdown,
    renderHealth,
    fieldOption,
    renderFilterRow,
    renderEmpty,
    renderError,
    renderLoading,
    timeZone,
    pretty,
    badge,
    chip,
    stat,
    section,
  });
})(window);
