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

  const AGENT_TONES = [
    "bg-sky-100 text-sky-800 border-sky-400",
    "bg-violet-100 text-violet-800 border-violet-400",
    "bg-emerald-100 text-emerald-800 border-emerald-400",
    "bg-amber-100 text-amber-800 border-amber-400",
    "bg-rose-100 text-rose-800 border-rose-400",
    "bg-teal-100 text-teal-800 border-teal-400",
  ];

  const ROLE_TONES = {
    user: "bg-slate-200 text-slate-700",
    assistant: "bg-indigo-600 text-white",
    tool: "bg-orange-100 text-orange-800",
    system: "bg-slate-700 text-white",
  };

  function agentTones(agentIds) {
    const tones = {};
    agentIds.forEach((id, index) => {
      tones[id] = AGENT_TONES[index % AGENT_TONES.length];
    });
    return tones;
  }

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

  function renderSessionCard(summary, selected) {
    const metadata = Object.entries(summary.metadata || {}).slice(0, 4);
    return el(
      "button",
      {
        type: "button",
        class: `session-card block w-full rounded-lg border bg-white p-3 text-left shadow-sm transition hover:border-indigo-400 hover:shadow ${
          selected ? "border-indigo-500 ring-2 ring-indigo-200" : "border-slate-200"
        }`,
        dataset: { sessionId: summary.session_id },
      },
      el("div", { class: "session-id truncate font-mono text-sm font-semibold text-slate-900", text: summary.session_id, title: summary.session_id }),
      el(
        "div",
        { class: "mt-0.5 text-xs text-slate-500", title: formatDate(summary.created_at) },
        `${formatDate(summary.created_at)} · ${formatRelative(summary.created_at)}`,
      ),
      el("div", { class: "mt-2 flex flex-wrap gap-1" }, metadata.map(([key, value]) => chip(key, formatValue(value)))),
      el(
        "div",
        { class: "mt-2 flex gap-3 text-xs text-slate-500" },
        el("span", { text: plural(summary.message_count, "message") }),
        el("span", { text: plural((summary.agent_ids || []).length, "agent") }),
        summary.feedback_count ? el("span", { text: plural(summary.feedback_count, "feedback", "feedback") }) : null,
      ),
    );
  }

  function renderEmpty(text) {
    return el("div", { class: "empty-state", text });
  }

  function renderError(text) {
    return el("div", { class: "rounded-lg bg-rose-50 p-3 text-sm text-rose-700", role: "alert", text });
  }

  function renderLoading(text) {
    return el("div", { class: "animate-pulse p-4 text-sm text-slate-400", text: text || "Loading…" });
  }

  // ---- detail ------------------------------------------------------------------------------------

  /** A button that copies `url` (the page finds it by its class); the URL never holds a password. */
  function copyLinkButton(url, label, extra) {
    return el("button", { type: "button", class: `copy-link btn-secondary ${extra || ""}`, dataset: { url }, title: `Copy a link: ${url}`, text: label });
  }

  function renderSessionHeader(detail, links) {
    const totals = detail.totals || {};
    const messages = (detail.agents || []).reduce((sum, agent) => sum + (Number(agent.message_count) || 0), 0);
    const feedback = detail.feedback_summary || {};
    const zone = timeZone();
    return el(
      "section",
      { class: "rounded-xl bg-white p-5 shadow-sm ring-1 ring-slate-200" },
      el(
        "div",
        { class: "flex flex-wrap items-start justify-between gap-3" },
        el(
          "div",
          { class: "min-w-0" },
          el("div", { class: "text-xs uppercase tracking-wide text-slate-400", text: "Session" }),
          el("h2", { id: "detail-session-id", class: "break-all font-mono text-xl font-semibold text-slate-900", text: detail.session_id }),
          el(
            "div",
            { class: "mt-1 text-sm text-slate-500" },
            `Created ${formatDate(detail.created_at)} · updated ${formatDate(detail.updated_at)}`,
            detail.session_type ? ` · ${detail.session_type}` : "",
          ),
          el("div", { id: "timezone-label", class: "mt-0.5 text-xs text-slate-400", text: `Times in your time zone: ${zone.name}${zone.short ? ` (${zone.short})` : ""}` }),
        ),
        el(
          "div",
          { class: "detail-actions flex flex-wrap gap-2" },
          links && links.session ? copyLinkButton(links.session, "Copy link", "copy-session-link") : null,
          el("button", { id: "export-session", type: "button", class: "btn-secondary", title: "Download this session as JSON", text: "Export JSON" }),
        ),
      ),
      el(
        "dl",
        { id: "session-totals", class: "stat-grid mt-4 grid gap-2" },
        stat("Messages", formatNumber(messages), "messages"),
        stat("Turns", formatNumber(totals.turns), "turns"),
        stat("Input tokens", formatNumber(totals.inputTokens), "input-tokens"),
        stat("Output tokens", formatNumber(totals.outputTokens), "output-tokens"),
        stat("Total tokens", formatNumber(totals.totalTokens), "total-tokens"),
        stat("Model latency", formatDuration(totals.latencyMs), "latency"),
        stat("Feedback", `▲ ${formatNumber(feedback.up || 0)} · ▼ ${formatNumber(feedback.down || 0)}`, "feedback"),
      ),
    );
  }

  function renderMetadata(metadata) {
    const entries = Object.entries(metadata || {});
    if (!entries.length) return section("Metadata", renderEmpty("No metadata."));
    return section(
      "Metadata",
      el(
        "dl",
        { id: "session-metadata", class: "grid grid-cols-[minmax(6rem,max-content)_minmax(0,1fr)] gap-x-4 gap-y-1.5 text-sm" },
        entries.map(([key, value]) => [
          el("dt", { class: "break-words font-medium text-slate-500", text: key }),
          el("dd", { class: "min-w-0 break-words text-slate-800", dataset: { key }, text: formatValue(value) }),
        ]),
      ),
    );
  }

  function renderAgents(agents, tones) {
    if (!agents.length) return section("Agents", renderEmpty("No agents."));
    return section(
      "Agents",
      el(
        "div",
        { id: "session-agents", class: "grid grid-cols-[repeat(auto-fill,minmax(12rem,1fr))] gap-3" },
        agents.map((agent) => {
          const usage = (agent.totals && agent.totals.usage) || {};
          return el(
            "article",
            { class: `agent-card rounded-lg border-l-4 bg-slate-50 p-3 ${tones[agent.agent_id] || ""}`, dataset: { agentId: agent.agent_id } },
            el("div", { class: "font-semibold", text: agent.agent_id }),
            el(
              "div",
              { class: "mt-0.5 truncate text-xs text-slate-600", title: agent.model || "" },
              el("span", { class: "text-slate-400", text: "Model " }),
              el("span", { class: "agent-model font-mono", text: agent.model || "unknown" }),
            ),
            el(
              "div",
              { class: "mt-1 text-xs text-slate-600" },
              `${plural(agent.message_count, "message")} · ${plural(usage.totalTokens || 0, "token")} · ${formatDuration((agent.totals || {}).latencyMs || 0)}`,
            ),
            agent.system_prompt
              ? el(
                  "details",
                  { class: "mt-2 text-sm" },
                  el("summary", { class: "cursor-pointer text-xs font-medium text-slate-600", text: "System prompt" }),
                  el("p", { class: "system-prompt mt-1 whitespace-pre-wrap rounded bg-white p-2 text-slate-700", text: agent.system_prompt }),
                )
              : null,
          );
        }),
      ),
    );
  }

  function ratingLabel(rating) {
    if (rating === "up") return ["Positive", "bg-emerald-100 text-emerald-800"];
    if (rating === "down") return ["Negative", "bg-rose-100 text-rose-800"];
    return ["Neutral", "bg-slate-200 text-slate-700"];
  }

  function renderJson(value, extraClass) {
    return el("pre", { class: `json-block overflow-x-auto rounded-md bg-slate-900 p-3 text-xs leading-relaxed text-slate-100 ${extraClass || ""}`, text: pretty(value) });
  }

  /** One content block: text as Markdown; tool calls, results, files as readable blocks. */
  function renderBlock(block) {
    switch (block.type) {
      case "text":
        return renderMarkdown(block.text);
      case "reasoning":
        return el(
          "details",
          { class: "rounded-md bg-slate-50 p-2 text-sm" },
          el("summary", { class: "cursor-pointer text-xs font-medium text-slate-500", text: "Reasoning" }),
          el("p", { class: "mt-1 whitespace-pre-wrap text-slate-600", text: block.text }),
        );
      case "tool_use":
        // One step: the call, then (filled in by the detail view when it arrives) its result and duration.
        return el(
          "div",
          { class: "tool-use tool-step rounded-lg border border-orange-200 bg-orange-50 p-3", dataset: { tool: block.name, toolUseId: block.tool_use_id, state: "pending" } },
          el(
            "div",
            { class: "mb-2 flex flex-wrap items-center gap-2 text-sm" },
            badge("Tool step", "bg-orange-200 text-orange-900"),
            el("span", { class: "font-mono font-semibold text-orange-900", text: block.name }),
            el("span", { class: "tool-duration text-xs font-medium text-slate-600" }),
            el("span", { class: "tool-use-id ml-auto font-mono text-xs text-orange-700/70", text: block.tool_use_id }),
          ),
          renderJson(block.input),
          el("div", { class: "tool-step-result mt-2" }, el("div", { class: "tool-pending text-xs text-slate-500", text: "Waiting for the result…" })),
        );
      case "tool_result": {
        const ok = block.status !== "error";
        return el(
          "div",
          { class: `tool-result rounded-lg border p-3 ${ok ? "border-emerald-200 bg-emerald-50" : "border-rose-200 bg-rose-50"}` },
          el(
            "div",
            { class: "mb-2 flex items-center gap-2 text-sm" },
            badge("Tool result", ok ? "bg-emerald-200 text-emerald-900" : "bg-rose-200 text-rose-900"),
            el("span", { class: "text-xs font-medium text-slate-600", text: block.status || "" }),
            el("span", { class: "tool-use-id ml-auto font-mono text-xs text-slate-500", text: block.tool_use_id }),
          ),
          (block.content || []).map((item) =>
            item.type === "text"
              ? el("pre", { class: "tool-output whitespace-pre-wrap break-words font-mono text-sm text-slate-800", text: item.text })
              : item.type === "json"
                ? renderJson(item.json)
                : renderBlock(item),
          ),
        );
      }
      case "image":
      case "document":
        return el(
          "div",
          { class: "attachment inline-flex items-center gap-2 rounded-md border border-dashed border-slate-300 bg-slate-50 px-3 py-2 text-sm text-slate-600" },
          badge(block.type === "image" ? "Image" : "Document", "bg-slate-200 text-slate-700"),
          el("span", { text: [block.name, block.format, `${formatNumber(block.size_bytes)} bytes`].filter(Boolean).join(" · ") }),
        );
      default:
        return renderJson(block.data === undefined ? block : block.data);
    }
  }

  function roleOf(item) {
    const blocks = item.content || [];
    if (item.role === "user" && blocks.length && blocks.every((b) => b.type === "tool_result")) return "tool";
    return item.role;
  }

  function renderMessageMetrics(item) {
    const parts = [];
    if (item.usage) {
      parts.push(
        el(
          "span",
          { class: "message-tokens" },
          el("span", { class: "text-slate-400", text: "Tokens " }),
          `${formatNumber(item.usage.inputTokens)} in · ${formatNumber(item.usage.outputTokens)} out · ${formatNumber(item.usage.totalTokens)} total`,
        ),
      );
    }
    if (item.latency_ms !== null && item.latency_ms !== undefined) {
      parts.push(el("span", { class: "message-latency" }, el("span", { class: "text-slate-400", text: "Latency " }), formatDuration(item.latency_ms)));
    }
    const metrics = item.metrics;
    let details = null;
    if (metrics) {
      const turnUsage = metrics.turn_usage || {};
      const toolCalls = Object.entries(metrics.turn_tool_calls || {}).map(([name, count]) => `${name} ×${count}`);
      details = el(
        "details",
        { class: "turn-metrics mt-2 rounded-md bg-slate-50 p-2 text-xs text-slate-600" },
        el("summary", { class: "cursor-pointer font-medium", text: `Turn metrics: ${plural(turnUsage.totalTokens, "token")} · ${formatDuration((metrics.turn_metrics || {}).latencyMs)} · ${plural(metrics.turn_cycle_count, "cycle")}` }),
        el(
          "dl",
          { class: "mt-2 grid grid-cols-[max-content_1fr] gap-x-3 gap-y-1" },
          el("dt", { text: "Turn tokens" }),
          el("dd", { text: `${formatNumber(turnUsage.inputTokens)} in · ${formatNumber(turnUsage.outputTokens)} out` }),
          el("dt", { text: "Tool calls" }),
          el("dd", { text: toolCalls.length ? toolCalls.join(", ") : "none" }),
          el("dt", { text: "Agent total" }),
          el("dd", { text: `${formatNumber((metrics.accumulated_usage || {}).totalTokens)} tokens · ${formatDuration((metrics.accumulated_metrics || {}).latencyMs)}` }),
        ),
      );
    }
    if (!parts.length && !details) return null;
    return el("footer", { class: "message-metrics mt-3 border-t border-slate-100 pt-2 text-xs text-slate-500" }, el("div", { class: "flex flex-wrap gap-3" }, parts), details);
  }

  /** DOM id of a timeline item (message ids are "<agent>:<n>"; agent ids may hold any character). */
  function itemAnchor(item) {
    return `item-${encodeURIComponent(item.id)}`;
  }

  function renderTimelineItem(item, tones, links) {
    if (item.type === "feedback") {
      const reviewer = item.source === "reviewer";
      const [label, tone] = ratingLabel(item.rating);
      return el(
        "li",
        {
          id: itemAnchor(item),
          class: `timeline-item feedback-entry rounded-xl border p-4 shadow-sm ${reviewer ? "reviewer-note" : "border-amber-200 bg-amber-50"}`,
          dataset: { type: "feedback", itemId: item.id, rating: item.rating || "neutral", source: item.source || "end-user" },
        },
        el(
          "div",
          { class: "flex flex-wrap items-center gap-2 text-sm" },
          reviewer ? badge("Reviewer note", "badge-reviewer") : badge("Feedback", "bg-amber-200 text-amber-900"),
          item.rating || !reviewer ? badge(label, tone) : null,
          el("span", { class: "ml-auto text-xs text-slate-500", text: formatDate(item.created_at) }),
        ),
        item.comment ? el("p", { class: "feedback-comment mt-2 whitespace-pre-wrap text-sm text-slate-800", text: item.comment }) : null,
      );
    }
    const role = roleOf(item);
    return el(
      "li",
      {
        id: itemAnchor(item),
        class: `timeline-item message rounded-xl border-l-4 bg-white p-4 shadow-sm ring-1 ring-slate-200 ${(tones[item.agent_id] || "").split(" ").filter((c) => c.startsWith("border-")).join(" ")}`,
        dataset: { type: "message", itemId: item.id, role, agentId: item.agent_id, messageId: item.message_id, createdAt: item.created_at || "" },
      },
      el(
        "header",
        { class: "mb-2 flex flex-wrap items-center gap-2" },
        badge(role === "tool" ? "tool result" : role, `role-badge ${ROLE_TONES[role] || ROLE_TONES.user}`),
        badge(item.agent_id, `agent-badge ${tones[item.agent_id] || ""}`),
        item.redacted ? badge("redacted", "bg-rose-100 text-rose-800") : null,
        el("span", { class: "ml-auto text-xs text-slate-400", title: item.created_at || "", text: formatDate(item.created_at) }),
        links && links.message ? copyLinkButton(links.message(item), "Link", "copy-message-link btn-small") : null,
      ),
      el("div", { class: "message-body space-y-2 text-sm text-slate-800" }, (item.content || []).map(renderBlock)),
      renderMessageMetrics(item),
    );
  }

  /** The timeline section; items are appended page by page by the detail view. */
  function renderTimeline(total) {
    return section(
      `Timeline (${formatNumber(total)})`,
      el("ol", { id: "timeline", class: "space-y-3" }),
      el(
        "div",
        { id: "timeline-more", class: "timeline-more mt-3 text-center" },
        el("button", { id: "load-more", type: "button", class: "btn-secondary hidden", text: "Load more" }),
        el("span", { id: "timeline-status", class: "block text-xs text-slate-400" }),
      ),
    );
  }

  /** Reviewer notes: stored as feedback entries marked source "reviewer", never counted as end-user feedback. */
  function renderNotes(notes, canWrite) {
    return section(
      "Reviewer notes",
      el(
        "ul",
        { id: "reviewer-notes", class: "space-y-2 text-sm" },
        notes.length ? notes.map(renderNote) : el("li", { class: "no-notes text-slate-400", text: "No notes yet." }),
      ),
      canWrite
        ? el(
            "form",
            { id: "note-form", class: "mt-3 space-y-2", autocomplete: "off" },
            el("label", { class: "field-label", for: "note-text", text: "Add a note (stored with the session, marked as a reviewer's)" }),
            el("textarea", { id: "note-text", class: "input", rows: 3, maxlength: 5000, required: true }),
            el(
              "div",
              { class: "flex flex-wrap items-center gap-2" },
              el(
                "select",
                { id: "note-rating", class: "input w-auto", "aria-label": "Rating of this note" },
                el("option", { value: "", text: "No rating" }),
                el("option", { value: "up", text: "Good answer" }),
                el("option", { value: "down", text: "Bad answer" }),
              ),
              el("button", { id: "note-submit", type: "submit", class: "btn-primary", text: "Add note" }),
              el("span", { id: "note-error", class: "hidden text-xs text-rose-700", role: "alert" }),
            ),
          )
        : el("p", { class: "text-xs text-slate-400", text: "Log in with the viewer password to add notes." }),
    );
  }

  function renderNote(note) {
    const [label, tone] = ratingLabel(note.rating);
    return el(
      "li",
      { class: "reviewer-note-entry rounded-lg p-2", dataset: { rating: note.rating || "none" } },
      el(
        "div",
        { class: "flex flex-wrap items-center gap-2 text-xs text-slate-500" },
        note.rating ? badge(label, tone) : null,
        el("span", { class: "ml-auto", text: formatDate(note.created_at) }),
      ),
      el("p", { class: "note-comment mt-1 whitespace-pre-wrap text-slate-800", text: note.comment }),
    );
  }

  function renderSessionDetail(detail, links, canWrite) {
    const tones = agentTones((detail.agents || []).map((a) => a.agent_id));
    const notes = (detail.feedbacks || []).filter((f) => f.source === "reviewer");
    return el(
      "div",
      { class: "space-y-4", dataset: { sessionId: detail.session_id } },
      renderSessionHeader(detail, links),
      el("div", { class: "detail-columns grid gap-4" }, renderMetadata(detail.metadata), renderAgents(detail.agents || [], tones)),
      renderNotes(notes, canWrite),
      renderTimeline(detail.timeline_total === undefined ? (detail.timeline || []).length : detail.timeline_total),
    );
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
    renderSessionCard,
    renderEmpty,
    renderError,
    renderLoading,
    renderBlock,
    renderTimelineItem,
    renderSessionDetail,
    renderNote,
    agentTones,
    itemAnchor,
    roleOf,
    timeZone,
  });
})(window);
