/*
 * The detail side of the Session Viewer: one session, its timeline page by page, and what a
 * reviewer does with it.
 *
 *   SessionDetail  header, metadata, agents, reviewer notes and the timeline; loads the next
 *                  timeline page when the end of the timeline scrolls into view; pairs each tool
 *                  call with its result (one step, with the time between them); copy-link buttons
 *                  for the session and each message; "Export JSON"; adding a reviewer note
 *   copyText       clipboard with a fallback for pages the Clipboard API is not allowed on
 *
 * Rendering is done by the pure functions of components.js; this file holds the state.
 */
(function (global) {
  "use strict";

  const C = global.SessionViewerComponents;
  const R = global.SessionViewerDetailRender;
  const el = C.el;
  /** How many pages a message link may load to find its message (a long session has thousands). */
  const MAX_PAGES_FOR_A_LINK = 400;

  async function copyText(text) {
    try {
      if (global.navigator.clipboard && global.isSecureContext) {
        await global.navigator.clipboard.writeText(text);
        return true;
      }
    } catch (error) {
      /* permission refused: try the old way */
    }
    const area = el("textarea", { class: "sr-only", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    let copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    area.remove();
    return copied;
  }

  /** Links carry the session (and message) id only, never a password. */
  function sessionLink(sessionId) {
    const url = new URL(global.location.href);
    url.search = new URLSearchParams({ session: sessionId }).toString();
    url.hash = "";
    return url.toString();
  }

  function messageLink(sessionId, itemId) {
    return `${sessionLink(sessionId)}#${new URLSearchParams({ message: itemId }).toString()}`;
  }

  function linkedMessageId() {
    const hash = global.location.hash.replace(/^#/, "");
    return hash ? new URLSearchParams(hash).get("message") : null;
  }

  function durationBetween(startIso, endIso) {
    const start = Date.parse(startIso || "");
    const end = Date.parse(endIso || "");
    return Number.isFinite(start) && Number.isFinite(end) && end >= start ? end - start : null;
  }

  class SessionDetail {
    /**
     * @param root     the element the detail is rendered into (inside the scrolling panel)
     * @param api      the APIClient (session pages, export, notes)
     * @param onAuthError called with an API error; returns true when it was handled (stale login)
     */
    constructor(root, api, onAuthError) {
      this.root = root;
      this.api = api;
      this.onAuthError = onAuthError || (() => false);
      this.scroller = root.parentElement;
      this.observer = null;
      this.root.addEventListener("click", (event) => this.onClick(event));
      this.reset();
    }

    reset() {
      if (this.observer) this.observer.disconnect();
      this.observer = null;
      this.detail = null;
      this.sessionId = null;
      this.nextOffset = null;
      this.loading = false;
      this.tones = {};
      this.generation = (this.generation || 0) + 1;
    }

    async open(sessionId) {
      this.reset();
      const generation = this.generation;
      this.sessionId = sessionId;
      this.showLoading();
      const detail = await this.api.session(sessionId, 0);
      if (generation !== this.generation) return;
      this.show(detail);
      const wanted = linkedMessageId();
      if (wanted) await this.reveal(wanted, generation);
    }

    show(detail) {
      this.detail = detail;
      this.tones = R.agentTones((detail.agents || []).map((a) => a.agent_id));
      const canWrite = Boolean(this.api.credentials && this.api.credentials.scope === "global");
      const links = { session: sessionLink(detail.session_id) };
      this.root.replaceChildren(R.renderSessionDetail(detail, links, canWrite));
      this.scroller.scrollTop = 0;
      this.timeline = this.root.querySelector("#timeline");
      this.more = this.root.querySelector("#load-more");
      this.status = this.root.querySelector("#timeline-status");
      this.root.querySelector("#export-session").addEventListener("click", () => this.exportJson());
      this.more.addEventListener("click", () => this.loadMore());
      const form = this.root.querySelector("#note-form");
      if (form) form.addEventListener("submit", (event) => this.submitNote(event));
      this.append(detail.timeline || []);
      this.setNext(detail.timeline_next_offset);
      this.watchTheEnd();
    }

    /** Load the next page as soon as the end of the timeline is near (IntersectionObserver). */
    watchTheEnd() {
      if (!global.IntersectionObserver) return;
      this.observer = new global.IntersectionObserver(
        (entries) => {
          if (entries.some((entry) => entry.isIntersecting)) this.loadMore();
        },
        { root: this.scroller, rootMargin: "0px 0px 600px 0px" },
      );
      this.observer.observe(this.root.querySelector("#timeline-more"));
    }

    setNext(offset) {
      this.nextOffset = offset === undefined ? null : offset;
      const total = this.detail ? this.detail.timeline_total : 0;
      const shown = this.timeline ? this.timeline.dataset.loaded || "0" : "0";
      C.setVisible(this.more, this.nextOffset !== null);
      this.status.textContent =
        this.nextOffset === null ? "" : `Showing ${C.formatNumber(shown)} of ${C.formatNumber(total)} items; more load as you scroll.`;
      this.root.querySelector("#timeline-more").dataset.state = this.nextOffset === null ? "done" : "more";
    }

    async loadMore() {
      if (this.loading || this.nextOffset === null || !this.sessionId) return false;
      const generation = this.generation;
      this.loading = true;
      this.status.textContent = "Loading…";
      try {
        const page = await this.api.session(this.sessionId, this.nextOffset);
        if (generation !== this.generation) return false;
        this.append(page.timeline || []);
        this.setNext(page.timeline_next_offset);
        return true;
      } catch (error) {
        if (!this.onAuthError(error)) this.status.textContent = error.message;
        return false;
      } finally {
        this.loading = false;
        // Still at the end after a short page (a tall screen): keep going.
        if (this.nextOffset !== null && this.nearTheEnd()) global.setTimeout(() => this.loadMore(), 0);
      }
    }

    nearTheEnd() {
      const marker = this.root.querySelector("#timeline-more");
      if (!marker) return false;
      return marker.getBoundingClientRect().top < this.scroller.getBoundingClientRect().bottom + 600;
    }

    /** Timeline items in order; a message that only returns tool results joins the steps it answers. */
    append(items) {
      const sessionId = this.detail.session_id;
      const links = { message: (item) => messageLink(sessionId, item.id) };
      let loaded = Number(this.timeline.dataset.loaded || 0);
      for (const item of items) {
        loaded += 1;
        if (item.type === "message" && this.attachToolResults(item)) continue;
        this.timeline.append(R.renderTimelineItem(item, this.tones, links));
      }
      this.timeline.dataset.loaded = String(loaded);
    }

    /** Put each tool result into the step of its call; true when the whole message was absorbed. */
    attachToolResults(item) {
      const blocks = item.content || [];
      if (!blocks.length || !blocks.every((b) => b.type === "tool_result")) return false;
      const steps = blocks.map((b) => this.findStep(b.tool_use_id));
      if (steps.some((step) => !step)) return false; // a result without its call stays on its own
      blocks.forEach((block, index) => {
        const step = steps[index];
        const call = step.closest(".timeline-item");
        const duration = durationBetween(call && call.dataset.createdAt, item.created_at);
        step.dataset.state = block.status === "error" ? "error" : "done";
        step.dataset.resultItemId = item.id;
        step.querySelector(".tool-step-result").replaceChildren(R.renderBlock(block));
        const shown = step.querySelector(".tool-duration");
        shown.textContent = duration === null ? "" : `took ${C.formatDuration(duration)}`;
        if (duration !== null) shown.dataset.ms = String(duration);
      });
      return true;
    }

    findStep(toolUseId) {
      for (const step of this.timeline.querySelectorAll(".tool-step[data-state='pending']")) {
        if (step.dataset.toolUseId === toolUseId) return step;
      }
      return null;
    }

    /** Scroll to a linked message, loading pages until it is there. */
    async reveal(itemId, generation) {
      let pages = 0;
      let node = this.findItem(itemId);
      while (!node && this.nextOffset !== null && pages < MAX_PAGES_FOR_A_LINK && generation === this.generation) {
        if (!(await this.loadMore())) break;
        pages += 1;
        node = this.findItem(itemId);
      }
      if (!node) {
        this.status.textContent = "The linked message is not in this session.";
        return;
      }
      node.classList.add("linked-item");
      node.scrollIntoView({ block: "center" });
    }

    findItem(itemId) {
      for (const node of this.timeline.querySelectorAll(".timeline-item")) if (node.dataset.itemId === itemId) return node;
      for (const step of this.timeline.querySelectorAll(".tool-step")) {
        if (step.dataset.resultItemId === itemId) return step.closest(".timeline-item");
      }
      return null;
    }

    async onClick(event) {
      const button = event.target.closest(".copy-link");
      if (!button || !this.root.contains(button)) return;
      const copied = await copyText(button.dataset.url);
      button.dataset.copied = copied ? "yes" : "no";
      const label = button.textContent;
      button.textContent = copied ? "Copied" : "Copy failed";
      global.setTimeout(() => {
        button.textContent = label;
      }, 1500);
    }

    async exportJson() {
      const button = this.root.querySelector("#export-session");
      button.disabled = true;
      try {
        const body = await this.api.exportSession(this.sessionId);
        const blob = new global.Blob([JSON.stringify(body, null, 2)], { type: "application/json" });
        const url = global.URL.createObjectURL(blob);
        const safe = this.sessionId.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 80) || "session";
        const link = el("a", { href: url, download: `session-${safe}.json`, class: "hidden" });
        document.body.append(link);
        link.click();
        link.remove();
        global.setTimeout(() => global.URL.revokeObjectURL(url), 10000);
      } catch (error) {
        if (!this.onAuthError(error)) this.status.textContent = `Export failed: ${error.message}`;
      } finally {
        button.disabled = false;
      }
    }

    async submitNote(event) {
      event.preventDefault();
      const text = this.root.querySelector("#note-text");
      const rating = this.root.querySelector("#note-rating");
      const problem = this.root.querySelector("#note-error");
      const comment = text.value.trim();
      if (!comment) return;
      const submit = this.root.querySelector("#note-submit");
      submit.disabled = true;
      C.setVisible(problem, false);
      try {
        const note = await this.api.addNote(this.sessionId, { comment, rating: rating.value || null });
        const list = this.root.querySelector("#reviewer-notes");
        const empty = list.querySelector(".no-notes");
        if (empty) empty.remove();
        list.append(R.renderNote(note));
        if (this.nextOffset === null) this.append([note]); // the timeline is complete: the note is its newest item
        text.value = "";
        rating.value = "";
      } catch (error) {
        if (!this.onAuthError(error)) {
          problem.textContent = error.message;
          C.setVisible(problem, true);
        }
      } finally {
        submit.disabled = false;
      }
    }

    showLoading() {
      this.root.replaceChildren(C.renderLoading("Loading session…"));
    }

    showError(message) {
      this.root.replaceChildren(C.renderError(message));
    }

    clear() {
      this.reset();
      this.root.replaceChildren(C.renderEmpty("Select a session to see its conversation."));
    }
  }

  global.SessionViewerDetail = Object.freeze({ SessionDetail, copyText, sessionLink, messageLink, linkedMessageId });
})(window);
