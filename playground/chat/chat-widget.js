// Chat playground: streams agent replies token by token from example_fastapi_streaming.py and keeps
// the session across page reloads (the session id lives in localStorage; the history in MongoDB).
// All stored/streamed text is rendered with textContent, never as HTML.
"use strict";

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

  async session(sessionId) {
    const response = await fetch(`${this.baseUrl}/sessions/${encodeURIComponent(sessionId)}`);
    if (!response.ok) throw new Error(`backend answered ${response.status}`);
    return response.json();
  }

  async feedback(sessionId, rating, comment = "") {
    await fetch(`${this.baseUrl}/sessions/${encodeURIComponent(sessionId)}/feedback`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ rating, comment }),
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
      const state = await this.client.session(this.sessionId);
      for (const item of state.history) this.bubble(item.role, item.text);
      this.showDetails(state);
      document.getElementById("backend-status").textContent = `Backend: ${this.client.baseUrl}`;
    } catch (error) {
      this.bubble("error", `Cannot reach the backend at ${this.client.baseUrl} (${error.message}).`);
    }
  }

  reset() {
    this.sessionId = this.newSessionId();
    localStorage.setItem("msm-chat-session", this.sessionId);
    this.messages.replaceChildren();
    this.start();
  }

  bubble(role, text) {
    const div = document.createElement("div");
    div.className = `msg ${role}`;
    div.textContent = text;
    this.messages.appendChild(div);
    this.messages.scrollTop = this.messages.scrollHeight;
    return div;
  }

  addFeedback(div) {
    const bar = document.createElement("div");
    bar.className = "feedback";
    for (const [label, rating] of [["👍", "up"], ["👎", "down"]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.title = rating === "up" ? "Helpful" : "Not helpful";
      button.addEventListener("click", async () => {
        await this.client.feedback(this.sessionId, rating);
        bar.textContent = "Thanks for the feedback.";
      });
      bar.appendChild(button);
    }
    div.appendChild(bar);
  }

  async ask() {
    const text = this.input.value.trim();
    if (!text) return;
    this.input.value = "";
    this.send.disabled = true;
    this.bubble("user", text);
    const answer = this.bubble("assistant", "");
    const content = document.createTextNode("");
    answer.appendChild(content);
    try {
      for await (const event of this.client.stream(this.sessionId, text)) {
        if (event.type === "delta") {
          content.data += event.text;
          this.messages.scrollTop = this.messages.scrollHeight;
        }
      }
      this.addFeedback(answer);
      this.showDetails(await this.client.session(this.sessionId));
    } catch (error) {
      this.bubble("error", `Request failed: ${error.message}`);
    } finally {
      this.send.disabled = false;
      this.input.focus();
    }
  }

  showDetails(state) {
    this.fill("metrics", {
      Messages: state.message_count,
      Turns: state.turns,
      "Total tokens": state.total_tokens,
      "Last latency": state.last_latency_ms == null ? "–" : `${state.last_latency_ms} ms`,
    });
    this.fill("metadata", state.metadata || {});
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
