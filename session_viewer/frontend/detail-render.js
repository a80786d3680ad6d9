/*
 * Pure render functions of the detail side: one session's header, metadata, agents, reviewer notes
 * and timeline items (messages with their content blocks and metrics, tool steps, feedback). Data in,
 * DOM nodes out, no state, no I/O; detail.js holds the state. Built on the helpers of components.js
 * and bound by the same safety rule: stored content reaches the page as text, or as Markdown
 * sanitised by DOMPurify.
 */
(function (global) {
  "use strict";

  const C = global.SessionViewerComponents;
  const { el, badge, stat, section, pretty, formatDate, formatNumber, formatDuration, formatValue, plural } = C;
  const { renderMarkdown, renderEmpty, timeZone } = C;

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

  global.SessionViewerDetailRender = Object.freeze({
    renderBlock,
    renderTimelineItem,
    renderSessionDetail,
    renderNote,
    agentTones,
    itemAnchor,
    roleOf,
  });
})(window);
