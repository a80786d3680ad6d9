/*
 * The list side of the Session Viewer: filters, sort control, list cards and the cursor pager.
 *
 *   FilterPanel   session id (prefix / exact / contains), a date range on the created or updated
 *                 date, feedback, agent, model, application and any number of metadata filters
 *   ResultsList   cards with per-session aggregates and a first-message preview, the sort control,
 *                 "Prev"/"Next" over the API's keyset cursors (the total comes with the first page)
 *   renderSessionCard  one card (pure: data in, DOM out)
 *
 * Every search the controls can make is served by one compound index; the API names the ones
 * that are not ("slow"), and the list shows that note above the cards.
 */
(function (global) {
  "use strict";

  const C = global.SessionViewerComponents;
  const el = C.el;
  /** Fields with their own controls: never offered again as "Add a filter". */
  const OWN_CONTROLS = ["session_id", "created_at", "updated_at"];
  const MAX_CHIPS = 6;

  function formatTokens(value) {
    if (!value) return "0";
    if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
    if (value >= 1e4) return `${Math.round(value / 1e3)}k`;
    return C.formatNumber(value);
  }

  function formatCost(summary) {
    if (summary.cost_usd === null || summary.cost_usd === undefined) return null;
    const amount = summary.cost_usd < 0.01 ? summary.cost_usd.toFixed(4) : summary.cost_usd.toFixed(2);
    return `${summary.cost_complete ? "" : "≥ "}$${amount}`;
  }

  function formatLatency(ms) {
    return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`;
  }

  /**
   * Metadata keys in a reviewer's order: the filterable (indexed) fields first, in the order the
   * API lists them, then the rest as stored (the order they were set in), never alphabetically.
   */
  function orderedMetadata(metadata, preferred) {
    const entries = Object.entries(metadata || {});
    const rank = new Map((preferred || []).map((key, index) => [key, index]));
    return entries
      .map((entry, index) => ({ entry, index }))
      .sort((a, b) => {
        const ra = rank.has(a.entry[0]) ? rank.get(a.entry[0]) : Infinity;
        const rb = rank.has(b.entry[0]) ? rank.get(b.entry[0]) : Infinity;
        return ra === rb ? a.index - b.index : ra - rb;
      })
      .map(({ entry }) => entry);
  }

  function chip(label, value) {
    return el(
      "span",
      { class: "meta-chip inline-flex max-w-full items-center gap-1 rounded-md bg-slate-100 px-1.5 py-0.5 text-xs text-slate-600", dataset: { key: label } },
      el("span", { class: "text-slate-400", text: label }),
      el("span", { class: "truncate font-medium text-slate-700", text: value }),
    );
  }

  function cardStat(key, text, title) {
    return el("span", { class: "card-stat", dataset: { stat: key }, title, text });
  }

  function renderSessionCard(summary, options) {
    const opts = options || {};
    const sortedBy = opts.sort === "updated_at" ? "updated_at" : "created_at";
    const metadata = orderedMetadata(summary.metadata, opts.metadataOrder);
    const shown = metadata.slice(0, MAX_CHIPS);
    const tokens = (summary.tokens && summary.tokens.totalTokens) || 0;
    const cost = formatCost(summary);
    const stats = [
      cardStat("turns", C.plural(summary.turns || 0, "turn"), "Model invocations recorded with metrics"),
      cardStat("messages", C.plural(summary.message_count || 0, "message"), "Messages over all agents"),
      cardStat("tokens", `${formatTokens(tokens)} tokens`, `Input ${C.formatNumber(summary.tokens ? summary.tokens.inputTokens : 0)} · output ${C.formatNumber(summary.tokens ? summary.tokens.outputTokens : 0)}`),
      summary.latency_ms ? cardStat("latency", formatLatency(summary.latency_ms), "Summed model latency") : null,
      cost ? cardStat("cost", cost, summary.cost_complete ? "Estimated from the price table" : "Some tokens came from a model without a price") : null,
      summary.feedback_up ? cardStat("feedback-up", `▲ ${summary.feedback_up}`, "Positive end-user feedback") : null,
      summary.feedback_down ? cardStat("feedback-down", `▼ ${summary.feedback_down}`, "Negative end-user feedback") : null,
    ];
    const agents = summary.agent_ids || [];
    const models = summary.models || [];
    return el(
      "button",
      {
        type: "button",
        class: `session-card block w-full rounded-lg border bg-white p-3 text-left shadow-sm transition hover:border-indigo-400 hover:shadow ${
          opts.selected ? "border-indigo-500 ring-2 ring-indigo-200" : "border-slate-200"
        }`,
        dataset: { sessionId: summary.session_id },
      },
      el(
        "div",
        { class: "flex items-center justify-between gap-2" },
        el("span", { class: "session-id min-w-0 truncate font-mono text-sm font-semibold text-slate-900", text: summary.session_id, title: summary.session_id }),
        el("span", { class: "card-when shrink-0 text-xs text-slate-500", title: C.formatDate(summary[sortedBy]), text: C.formatRelative(summary[sortedBy]) }),
      ),
      el(
        "div",
        { class: "card-dates mt-1 text-xs text-slate-500" },
        `Created ${C.formatDate(summary.created_at)}${summary.updated_at ? ` · updated ${C.formatRelative(summary.updated_at)}` : ""}`,
      ),
      summary.preview ? el("p", { class: "card-preview mt-2 text-sm text-slate-600", text: summary.preview, title: summary.preview }) : null,
      el("div", { class: "card-stats mt-2 flex flex-wrap gap-2 text-xs text-slate-600" }, stats),
      agents.length || models.length || summary.application_name
        ? el(
            "div",
            { class: "card-agents mt-1 truncate text-xs text-slate-500", title: [...agents, ...models].join(", ") },
            [summary.application_name, agents.join(", "), models.join(", ")].filter(Boolean).join(" · "),
          )
        : null,
      shown.length
        ? el(
            "div",
            { class: "card-metadata mt-2 flex flex-wrap gap-1" },
            shown.map(([key, value]) => chip(key, C.formatValue(value))),
            metadata.length > shown.length ? el("span", { class: "text-xs text-slate-400", text: `+${metadata.length - shown.length} more` }) : null,
          )
        : null,
    );
  }

  function option(value, text) {
    return el("option", { value, text });
  }

  class FilterPanel {
    constructor(root, onSearch) {
      this.form = root;
      this.onSearch = onSearch;
      this.fields = [];
      this.rows = new Map(); // rowId -> {field, node}
      this.nextRowId = 1;
      this.select = root.querySelector("#add-filter-field");
      this.list = root.querySelector("#metadata-filters");
      this.error = root.querySelector("#filter-error");
      root.querySelector("#add-filter").addEventListener("click", () => this.addFilter(this.select.value));
      this.select.addEventListener("change", () => this.addFilter(this.select.value));
      root.querySelector("#reset-button").addEventListener("click", () => {
        this.reset();
        this.onSearch();
      });
      root.addEventListener("submit", (event) => {
        event.preventDefault();
        this.onSearch();
      });
      for (const id of ["filter-feedback", "filter-agent", "filter-model", "filter-application", "filter-id-match"]) {
        const control = root.querySelector(`#${id}`);
        if (control && control.tagName === "SELECT") control.addEventListener("change", () => this.onSearch());
      }
    }

    /** Offer every filterable field except the ones with their own inputs (id, dates). */
    setFields(fields) {
      this.fields = fields.filter((f) => !OWN_CONTROLS.includes(f.field) && f.type !== "date" && f.type !== "other");
      this.select.replaceChildren(option("", "Add a filter…"), ...this.fields.map(C.fieldOption));
    }

    /** Metadata keys in the order the index list gives them (what cards show first). */
    metadataOrder() {
      return this.fields.filter((f) => f.field.startsWith("metadata.")).map((f) => f.field.slice("metadata.".length));
    }

    /** Dropdowns for agent, model and application when the API could list their values. */
    setOptions(options) {
      const fill = (id, values, anyLabel) => {
        const wrapper = this.form.querySelector(`#${id}-wrapper`);
        const select = this.form.querySelector(`#${id}`);
        if (!select) return;
        if (Array.isArray(values) && values.length === 0) {
          C.setVisible(wrapper, false);
          return;
        }
        if (Array.isArray(values)) {
          select.replaceChildren(option("", anyLabel), ...values.map((v) => option(v, v)));
        } else if (select.tagName === "SELECT") {
          // Too many values to list (the API sent null): type one in; the filter is still an equality.
          const input = el("input", { id, type: "search", class: "input", placeholder: `${anyLabel} (type an exact value)`, "aria-label": select.getAttribute("aria-label") });
          select.replaceWith(input);
        }
        C.setVisible(wrapper, true);
      };
      fill("filter-agent", options.agent_ids, "Any agent");
      fill("filter-model", options.models, "Any model");
      fill("filter-application", options.application_names, "Any application");
    }

    addFilter(fieldPath) {
      const field = this.fields.find((f) => f.field === fieldPath);
      this.select.value = "";
      if (!field) return;
      const rowId = String(this.nextRowId++);
      const node = C.renderFilterRow(field, rowId);
      if (field.type === "string") {
        const ops = el(
          "select",
          { class: "input filter-op mb-1", "aria-label": `How to match ${field.label}` },
          option("eq", "is"),
          option("prefix", "starts with"),
          option("contains", "contains (slow)"),
        );
        const control = node.querySelector(".filter-value");
        control.placeholder = "value…";
        control.before(ops);
      }
      node.querySelector(".remove-filter").addEventListener("click", () => this.removeFilter(rowId));
      this.rows.set(rowId, { field, node });
      this.list.append(node);
      const control = node.querySelector(".filter-value");
      if (control) control.focus();
    }

    removeFilter(rowId) {
      const row = this.rows.get(rowId);
      if (!row) return;
      row.node.remove();
      this.rows.delete(rowId);
    }

    /** Filters as the API expects them: typed values; text as "is", "starts with" or "contains". */
    values() {
      const filters = [];
      for (const { field, node } of this.rows.values()) {
        const control = node.querySelector(".filter-value");
        if (field.type === "enum" || field.type === "boolean") {
          const options = field.type === "boolean" ? [true, false] : field.values || [];
          const value = options[Number(control.value)];
          if (value !== undefined) filters.push({ field: field.field, op: "eq", value });
        } else if (field.type === "number") {
          if (control.value.trim() !== "" && Number.isFinite(Number(control.value))) {
            filters.push({ field: field.field, op: "eq", value: Number(control.value) });
          }
        } else if (control.value.trim()) {
          const op = node.querySelector(".filter-op");
          filters.push({ field: field.field, op: op ? op.value : "eq", value: control.value.trim() });
        }
      }
      const $ = (id) => this.form.querySelector(`#${id}`);
      const dateField = $("filter-date-field").value === "updated" ? "updated" : "created";
      const values = {
        sessionId: $("filter-session-id").value.trim(),
        sessionIdMatch: $("filter-id-match").value,
        feedback: $("filter-feedback").value,
        agentId: $("filter-agent").value.trim(),
        model: $("filter-model").value.trim(),
        applicationName: $("filter-application").value.trim(),
        filters,
      };
      values[`${dateField}From`] = $("filter-date-from").value;
      values[`${dateField}To`] = $("filter-date-to").value;
      return values;
    }

    reset() {
      this.form.reset();
      for (const rowId of [...this.rows.keys()]) this.removeFilter(rowId);
      this.showError(null);
    }

    showError(message) {
      this.error.textContent = message || "";
      C.setVisible(this.error, Boolean(message));
    }
  }

  class ResultsList {
    constructor(root, { onSelect, onPage, onPageSize, onSort }) {
      this.list = root.querySelector("#results-list");
      this.count = root.querySelector("#results-count");
      this.pageInfo = root.querySelector("#page-info");
      this.prev = root.querySelector("#prev-page");
      this.next = root.querySelector("#next-page");
      this.pageSize = root.querySelector("#page-size");
      this.sortBy = root.querySelector("#sort-by");
      this.sortOrder = root.querySelector("#sort-order");
      this.slowNote = root.querySelector("#slow-note");
      this.selectedId = null;
      this.response = null;
      this.metadataOrder = [];
      this.total = null; // from the first page; cursor pages do not count again
      this.list.addEventListener("click", (event) => {
        const card = event.target.closest(".session-card");
        if (card) onSelect(card.dataset.sessionId);
      });
      this.prev.addEventListener("click", () => onPage("prev", this.response.prev_cursor));
      this.next.addEventListener("click", () => onPage("next", this.response.next_cursor));
      this.pageSize.addEventListener("change", () => onPageSize(Number(this.pageSize.value)));
      this.sortBy.addEventListener("change", () => onSort());
      this.sortOrder.addEventListener("change", () => onSort());
    }

    sort() {
      return { sortBy: this.sortBy.value, sortOrder: this.sortOrder.value };
    }

    totalText(response) {
      if (response.total_kind === "unknown") return "many found (count timed out)";
      if (response.total_kind === "at_least") return `${C.formatNumber(response.total)}+ found`;
      return `${C.formatNumber(response.total)} found`;
    }

    /** Which database and collection this viewer reads, and how to point it elsewhere (an empty list's hint). */
    sourceHint() {
      const source = this.source || {};
      const hint = document.createElement("p");
      hint.id = "empty-source-hint";
      hint.className = "mt-2 px-4 text-xs text-slate-500";
      const where = source.database ? `${source.database}.${source.collection}` : "the configured collection";
      hint.textContent =
        `This viewer reads ${where}. To read another one, restart it with DATABASE_NAME and COLLECTION_NAME ` +
        "(and MONGODB_CONNECTION_STRING for another server) set.";
      return hint;
    }

    render(response) {
      // Cursor pages are not counted again ("not_counted"): the first page's total still holds.
      if (response.total_kind !== "not_counted") {
        this.total = { text: this.totalText(response), pages: response.total_pages };
      }
      this.response = response;
      this.count.textContent = this.total ? this.total.text : "";
      const pages = this.total && this.total.pages;
      this.pageInfo.textContent = pages ? `Page ${response.page} of ${pages}` : `Page ${response.page}`;
      this.prev.disabled = !response.prev_cursor;
      this.next.disabled = !response.next_cursor;
      const slow = response.slow || [];
      this.slowNote.textContent = slow.length ? `Slow search: ${slow.join("; ")}.` : "";
      C.setVisible(this.slowNote, slow.length > 0);
      if (!response.sessions.length) {
        this.list.replaceChildren(C.renderEmpty("No sessions match these filters."), this.sourceHint());
        return;
      }
      const options = { sort: response.sort, metadataOrder: this.metadataOrder };
      this.list.replaceChildren(
        ...response.sessions.map((s) => renderSessionCard(s, Object.assign({ selected: s.session_id === this.selectedId }, options))),
      );
    }

    setSelected(sessionId) {
      this.selectedId = sessionId;
      if (this.response) this.render(this.response);
    }

    showLoading() {
      this.list.replaceChildren(C.renderLoading("Searching…"));
    }

    showError(message) {
      this.count.textContent = "";
      this.list.replaceChildren(C.renderError(message));
    }
  }

  global.SessionViewerList = { FilterPanel, ResultsList, renderSessionCard, orderedMetadata, formatTokens };
})(window);
