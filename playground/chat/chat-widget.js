// Chat playground: streams agent replies token by token from example_fastapi_streaming.py and keeps
// the session across page reloads (the session id lives in localStorage; the history in MongoDB,
// where the Session Viewer reads it too).
//
// Safety: typed and streamed text is rendered with textContent; a finished assistant message is
// rendered as Markdown by the Session Viewer's own renderer (marked, then DOMPurify). Icons are
// inline SVG built from constant path data, so they look the same with any installed fonts.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const ICONS = {
  up: ["M7 10v12", "M15 5.88 14 10h5.83a2 2 0 0 1 1.92 2.56l-2.33 8A2 2 0 0 1 17.5 22H4a2 2 0 0 1-2-2v-8a2 2 0 0 1 2-2h2.76a2 2 0 0 0 1.79-1.11L12 2a3.13 3.13 0 0 1 3 3.88Z"],
  down: ["M17 14V2", "M9 18.12 10 14H4.17a2 2 0 0 1-1.92-2.56l2.33-8A2 2 0 0 1 6.5 2H20a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2h-2.76a2 2 0 0 0-1.79 1.11L12 22a3.13 3.13 0 0 1-3-3.88Z"],
  tool: ["M14.7 6.3a1 1 0 0 0 0 1.4l1.6 1.6a1 1 0 0 0 1.4 0l3.77-3.77a6 6 0 0 1-7.94 7.94l-6.91 6.91a2.12 2.12 0 0 1-3-3l6.91-6.91a6 6 0 0 1 7.94-7.94l-3.76 3.76z"],
  external: ["M15 3h6v6", "M10 14 21 3", "M18 13v6a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h6"],
};

function icon(name) {
  const svg = document.createElementNS(SVG_NS, "svg");
  for (const [key, value] of Object.entries({
    viewBox: "0 0 24 24", fill: "none", stroke: "currentColor", "stroke-width": "2",
    "stroke-linecap": "round", "stroke-linejoin": "round", "aria-hidden": "true", class: "icon",
  })) svg.setAttribute(key, value);
  svg.dataset.icon = name;
  for (const d of ICONS[name]) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    svg.appendChild(path);
  }
  return svg;
}

function renderMarkdown(text) {
  const components = window.SessionViewerComponents;
  if (components && components.renderMarkdown) return components.renderMarkdown(text);
  const div = document.createElement("div"); // the viewer's renderer is missing: plain text, never HTML
  div.style.whiteSpace = "pre-wrap";
  div.textContent = text;
  return div;
}

class ChatClient {
  constructor(baseUrl) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
  }

  async *stream(sessionId, message) {
    const response = await fetch(`${this.baseUrl}/chat/stream`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ session_id: sessionId, message }),
    });
    if (!response.ok) throw new Error(`backend answered ${response.status}`);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) yield JSON.parse(line);
      }
    }
  }

  async json(path, init) {
    const response = await fetch(`${this.baseUrl}${path}`, init);
    if (!response.ok) throw new Error(`backend answered ${response.status}`);
    return response.json();
  }

  session(sessionId) {
    return this.json(`/sessions/${encodeURIComponent(sessionId)}`);
  }

  health() {
    return this.json("/health");
  }

  feedback(sessionId, messageId, rating, comment) {
    return this.json(`/sessions/${encodeURIComponent(sessionId)}/feedback`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ rating, comment, message_id: messageId }),
    });
  }
}

class ChatWidget {
  constructor(client) {
    this.client = client;
    this.messages = document.getElementById("messages");
    this.form = document.getElementById("composer");
    this.input = document.getElementById("prompt");
    this.send = document.getElementById("send");
    this.viewerLink = document.getElementById("viewer-link");
    this.viewerLink.prepend(icon("external"));
    this.sessionId = localStorage.getItem("msm-chat-session") || this.newSessionId();
    localStorage.setItem("msm-chat-session", this.sessionId);
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.ask(); });
    document.getElementById("new-session").addEventListener("click", () => this.reset());
  }

  newSessionId() {
    const random = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now() + Math.random())).slice(0, 8);
    return `chat-${random}`;
  }

  async start() {
    document.getElementById("session-label").textContent = this.sessionId;
    try {
      const [health, state] = await Promise.all([this.client.health(), this.client.session(this.sessionId)]);
      this.render(state);
      document.getElementById("backend-status").textContent =
        `Backend: ${this.client.baseUrl} · stored in ${health.database}.${health.collection}`;
    } catch (error) {
      this.bubble("error").textContent = `Cannot reach the backend at ${this.client.baseUrl} (${error.message}).`;
    }
  }

  reset() {
    this.sessionId = this.newSessionId();
    localStorage.setItem("msm-chat-session", this.sessionId);
    this.messages.replaceChildren();
    this.start();
  }

  // ---- rendering --------------------------------------------------------------------------------

  /** The whole conversation as stored: one bubble per user or assistant message. */
  render(state) {
    this.messages.replaceChildren();
    for (const entry of state.messages) this.entryBubble(entry);
    this.showDetails(state);
  }

  bubble(role) {
    const div = document.createElement("div");
    div.className = `msg ${role}`;
    this.messages.appendChild(div);
    this.messages.scrollTop = this.messages.scrollHeight;
    return div;
  }

  entryBubble(entry) {
    const div = this.bubble(entry.role);
    div.dataset.messageId = entry.message_id;
    if (entry.role === "user") {
      div.textContent = entry.text;
      return div;
    }
    if (entry.text) div.appendChild(renderMarkdown(entry.text));
    for (const tool of entry.tools) div.appendChild(this.toolDetails(tool));
    if (entry.text) div.appendChild(this.feedbackBar(entry));
    return div;
  }

  /** A tool call, collapsed: the name in the summary, input and result inside. */
  toolDetails(tool) {
    const details = document.createElement("details");
    details.className = "tool";
    details.dataset.tool = tool.name;
    details.dataset.toolUseId = tool.tool_use_id;
    const summary = document.createElement("summary");
    const label = document.createElement("span");
    label.textContent = `Tool call: ${tool.name}`;
    summary.append(icon("tool"), label);
    const input = document.createElement("pre");
    input.className = "tool-input";
    input.textContent = `input: ${JSON.stringify(tool.input)}`;
    const result = document.createElement("pre");
    result.className = "tool-result";
    result.textContent = tool.result == null ? "running…" : `result: ${tool.result}`;
    details.append(summary, input, result);
    return details;
  }

  /** Thumbs up/down for one message, then an optional comment; what was stored shows after a reload. */
  feedbackBar(entry) {
    const bar = document.createElement("div");
    bar.className = "feedback";
    const buttons = {};
    const form = document.createElement("form");
    form.hidden = true;
    const comment = document.createElement("input");
    comment.className = "fb-comment";
    comment.placeholder = "Add a comment (optional)";
    comment.maxLength = 2000;
    const submit = document.createElement("button");
    submit.type = "submit";
    submit.className = "fb-send";
    submit.textContent = "Send";
    form.append(comment, submit);
    const saved = document.createElement("span");
    saved.className = "fb-comment-text";
    let pending = null;

    const show = (feedback, status) => {
      for (const [rating, button] of Object.entries(buttons)) {
        button.setAttribute("aria-pressed", String(Boolean(feedback) && feedback.rating === rating));
      }
      saved.textContent = feedback && feedback.comment ? `“${feedback.comment}”` : "";
      bar.dataset.rating = feedback ? feedback.rating || "" : "";
      status.textContent = feedback ? "Feedback saved." : "";
    };
    const status = document.createElement("span");
    status.className = "fb-status";

    for (const [rating, title] of [["up", "Helpful"], ["down", "Not helpful"]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = `fb-${rating}`;
      button.title = title;
      button.setAttribute("aria-label", title);
      button.appendChild(icon(rating));
      button.addEventListener("click", () => {
        pending = rating;
        for (const [r, b] of Object.entries(buttons)) b.setAttribute("aria-pressed", String(r === rating));
        form.hidden = false;
        comment.focus();
      });
      buttons[rating] = button;
      bar.appendChild(button);
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      submit.disabled = true;
      try {
        const text = comment.value.trim();
        await this.client.feedback(this.sessionId, entry.message_id, pending, text);
        form.hidden = true;
        comment.value = "";
        show({ rating: pending, comment: text }, status);
      } catch (error) {
        status.textContent = `Not saved: ${error.message}`;
      } finally {
        submit.disabled = false;
      }
    });
    bar.append(status, form, saved);
    show(entry.feedback, status);
    return bar;
  }

  // ---- a turn -----------------------------------------------------------------------------------

  async ask() {
    const text = this.input.value.trim();
    if (!text) return;
    this.input.value = "";
    this.send.disabled = true;
    this.bubble("user").textContent = text;
    let current = null; // the assistant message being streamed; each message gets its own bubble
    const open = () => {
      const div = this.bubble("assistant");
      const streaming = document.createElement("div");
      streaming.className = "streaming";
      const node = document.createTextNode("");
      streaming.appendChild(node);
      div.appendChild(streaming);
      return { div, streaming, node };
    };
    try {
      for await (const event of this.client.stream(this.sessionId, text)) {
        if (event.type === "delta") {
          current = current || open();
          current.node.data += event.text;
          this.messages.scrollTop = this.messages.scrollHeight;
        } else if (event.type === "assistant_message") {
          current = current || open();
          if (current.node.data) current.streaming.replaceWith(renderMarkdown(current.node.data));
          else current.streaming.remove();
          for (const tool of event.tools) current.div.appendChild(this.toolDetails(tool));
          current = null;
        } else if (event.type === "tool_result") {
          for (const details of this.messages.querySelectorAll("details.tool")) {
            if (details.dataset.toolUseId === event.tool_use_id) {
              details.querySelector(".tool-result").textContent = `result: ${event.text}`;
            }
          }
        }
      }
      this.render(await this.client.session(this.sessionId)); // as stored: ids, feedback bars
    } catch (error) {
      this.bubble("error").textContent = `Request failed: ${error.message}`;
    } finally {
      this.send.disabled = false;
      this.input.focus();
    }
  }

  showDetails(state) {
    this.fill("metrics", {
      Messages: state.message_count,
      "Tool calls": state.tool_calls,
      Turns: state.turns,
      "Total tokens": state.total_tokens,
      "Last latency": state.last_latency_ms == null ? "–" : `${state.last_latency_ms} ms`,
    });
    this.fill("metadata", state.metadata || {});
    if (state.viewer_url) {
      this.viewerLink.href = state.viewer_url;
      this.viewerLink.hidden = false;
    }
  }

  fill(id, values) {
    const list = document.getElementById(id);
    list.replaceChildren();
    const entries = Object.entries(values);
    if (!entries.length) {
      const dd = document.createElement("dd");
      dd.textContent = "none yet";
      list.appendChild(dd);
    }
    for (const [key, value] of entries) {
      const dt = document.createElement("dt");
      dt.textContent = key;
      const dd = document.createElement("dd");
      dd.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
      dd.dataset.key = key;
      list.append(dt, dd);
    }
  }
}

const params = new URLSearchParams(window.location.search);
const apiBase = params.get("api") || (window.CHAT_CONFIG && window.CHAT_CONFIG.apiBaseUrl) || "http://localhost:8880";
window.chatWidget = new ChatWidget(new ChatClient(apiBase));
window.chatWidget.start();
