/*
 * Session Viewer frontend: ES6 classes wiring the pure render functions of components.js to the API.
 *
 *   APIClient      HTTP with axios; passwords travel in headers only, never in a URL
 *   FilterPanel    (list.js) session id, date range, feedback/agent/model/application, metadata filters
 *   ResultsList    (list.js) list cards, sort control, cursor pager
 *   SessionDetail  (detail.js) one session: header, notes, paged timeline, tool steps, export, links
 *   SessionViewer  the orchestrator: login, health polling, search, deep links (?session=<id>)
 */
(function (global) {
  "use strict";

  const C = global.SessionViewerComponents;
  const { FilterPanel, ResultsList } = global.SessionViewerList;
  const { SessionDetail } = global.SessionViewerDetail;
  const DEFAULT_CONFIG = { apiBaseUrl: "", healthIntervalMs: 30000, requestTimeoutMs: 20000 };
  const STORAGE_KEY = "sessionViewer.credentials";

  if (global.dayjs && global.dayjs_plugin_relativeTime) global.dayjs.extend(global.dayjs_plugin_relativeTime);

  class APIError extends Error {
    constructor(message, status, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  /** This browser's device token: handed out by the API after a successful login, kept across tabs.
   *  With it, someone guessing passwords from the same address (an office NAT) cannot lock you out. */
  const DEVICE_KEY = "sessionViewer.device";
  const DEVICE_HEADER = "X-Viewer-Device";

  function storedDevice() {
    try {
      return global.localStorage.getItem(DEVICE_KEY);
    } catch (error) {
      return null; // storage disabled: counted by address, like any new browser
    }
  }

  class APIClient {
    constructor(baseUrl, timeoutMs) {
      this.http = global.axios.create({ baseURL: (baseUrl || "").replace(/\/$/, ""), timeout: timeoutMs });
      this.credentials = null; // {password, scope: "global"|"session", sessionId}
      this.http.interceptors.request.use((config) => {
        const device = storedDevice();
        if (device) config.headers[DEVICE_HEADER] = device;
        return config;
      });
      const keepDevice = (response) => {
        const token = response && response.headers && response.headers[DEVICE_HEADER.toLowerCase()];
        if (token) {
          try {
            global.localStorage.setItem(DEVICE_KEY, token);
          } catch (error) {
            /* storage disabled */
          }
        }
        return response;
      };
      this.http.interceptors.response.use(keepDevice, (error) => {
        keepDevice(error && error.response);
        return Promise.reject(error);
      });
    }

    setCredentials(credentials) {
      this.credentials = credentials;
    }

    authHeaders() {
      const c = this.credentials;
      if (!c) return {};
      return c.scope === "session" ? { "X-Session-Password": c.password } : { "X-Backend-Password": c.password };
    }

    async request(path, params, headers) {
      try {
        const response = await this.http.get(path, { params, headers: headers || this.authHeaders() });
        return response.data;
      } catch (error) {
        throw APIClient.toError(error);
      }
    }

    async post(path, body) {
      try {
        const response = await this.http.post(path, body, { headers: this.authHeaders() });
        return response.data;
      } catch (error) {
        throw APIClient.toError(error);
      }
    }

    static toError(error) {
      const response = error && error.response;
      if (!response) return new APIError("The backend cannot be reached.", 0);
      const detail = response.data && response.data.detail;
      let message = typeof detail === "string" ? detail : `Request failed (${response.status})`;
      if (Array.isArray(detail)) message = detail.map((d) => `${(d.loc || []).slice(-1)[0] || "input"}: ${d.msg}`).join("; ");
      const retry = Number(response.headers && response.headers["retry-after"]);
      return new APIError(message, response.status, Number.isFinite(retry) ? retry : null);
    }

    async health() {
      try {
        const response = await this.http.get("/health", { validateStatus: () => true });
        return response.status === 200 ? "ok" : response.status === 503 ? "degraded" : "offline";
      } catch (error) {
        return "offline";
      }
    }

    /** What a password opens: {scope: "global"} or {scope: "session", session_id}. One attempt. */
    checkPassword(password, sessionId) {
      const headers = { "X-Backend-Password": password };
      if (sessionId) headers["X-Session-Password"] = password;
      return this.request("/api/v1/auth/check", sessionId ? { session_id: sessionId } : {}, headers);
    }

    metadataFields() {
      return this.request("/api/v1/metadata-fields");
    }

    search(query) {
      const params = { page: query.page, page_size: query.pageSize };
      const optional = {
        session_id: query.sessionId,
        session_id_match: query.sessionId ? query.sessionIdMatch : "",
        created_from: query.createdFrom,
        created_to: query.createdTo,
        updated_from: query.updatedFrom,
        updated_to: query.updatedTo,
        feedback: query.feedback,
        agent_id: query.agentId,
        model: query.model,
        application_name: query.applicationName,
        sort_by: query.sortBy,
        sort_order: query.sortOrder,
        cursor: query.cursor,
      };
      for (const [name, value] of Object.entries(optional)) if (value) params[name] = value;
      if (query.filters && query.filters.length) params.filters = JSON.stringify(query.filters);
      return this.request("/api/v1/sessions/search", params);
    }

    searchOptions() {
      return this.request("/api/v1/search-options");
    }

    /** The session's header and one timeline page from ``offset`` (``/session/``: any id, even "search"). */
    session(sessionId, offset) {
      return this.request(`/api/v1/session/${encodeURIComponent(sessionId)}`, { timeline_offset: offset || 0 });
    }

    exportSession(sessionId) {
      return this.request(`/api/v1/session-export/${encodeURIComponent(sessionId)}`);
    }

    addNote(sessionId, note) {
      return this.post(`/api/v1/session-notes/${encodeURIComponent(sessionId)}`, note);
    }
  }

  class SessionViewer {
    constructor(config) {
      this.config = Object.assign({}, DEFAULT_CONFIG, config || {});
      this.api = new APIClient(this.config.apiBaseUrl, this.config.requestTimeoutMs);
      this.query = { page: 1, pageSize: 20 };
      this.$ = (id) => document.getElementById(id);
      this.filters = new FilterPanel(this.$("filters"), () => this.search(1));
      this.results = new ResultsList(this.$("results-panel"), {
        onSelect: (id) => this.openSession(id),
        onPage: (direction, cursor) => this.page(direction, cursor),
        onPageSize: (size) => {
          this.query.pageSize = size;
          this.search(1);
        },
        onSort: () => this.search(1),
      });
      this.detail = new SessionDetail(this.$("session-detail"), this.api, (error) => this.handleAuthError(error));
      this.$("login-form").addEventListener("submit", (event) => {
        event.preventDefault();
        this.login(this.$("login-password").value);
      });
      this.$("logout").addEventListener("click", () => this.logout());
    }

    linkedSessionId() {
      return new URLSearchParams(global.location.search).get("session");
    }

    async start() {
      this.pollHealth();
      const saved = this.loadCredentials();
      if (saved) {
        this.api.setCredentials(saved);
        await this.enter();
      } else {
        this.showLogin();
      }
    }

    async pollHealth() {
      const state = await this.api.health();
      const view = C.renderHealth(state);
      this.$("health").dataset.state = state;
      this.$("health-dot").className = view.dotClass;
      this.$("health-text").textContent = view.text;
      clearTimeout(this.healthTimer);
      this.healthTimer = setTimeout(() => this.pollHealth(), this.config.healthIntervalMs);
    }

    showLogin(message) {
      const linked = this.linkedSessionId();
      this.$("login-hint").textContent = linked
        ? "Enter the viewer password, or the password of this session."
        : "Enter the viewer password.";
      const error = this.$("login-error");
      error.textContent = message || "";
      C.setVisible(error, Boolean(message));
      C.setVisible(this.$("login"), true, "grid");
      this.$("login-password").focus();
    }

    async login(password) {
      if (!password) return;
      const linked = this.linkedSessionId();
      this.$("login-submit").disabled = true;
      try {
        const result = await this.api.checkPassword(password, linked);
        const credentials = { password, scope: result.scope, sessionId: result.session_id || null };
        this.api.setCredentials(credentials);
        this.saveCredentials(credentials);
        this.$("login-password").value = "";
        await this.enter();
      } catch (error) {
        let message = error.message;
        if (error.status === 401) message = "Wrong password.";
        if (error.status === 429) message = `Too many failed attempts. Try again in ${error.retryAfter || "a few"} seconds.`;
        this.showLogin(message);
      } finally {
        this.$("login-submit").disabled = false;
      }
    }

    async enter() {
      C.setVisible(this.$("login"), false, "grid");
      C.setVisible(this.$("logout"), true);
      const credentials = this.api.credentials;
      const sessionOnly = credentials.scope === "session";
      C.setVisible(this.$("filter-panel"), !sessionOnly);
      C.setVisible(this.$("results-panel"), !sessionOnly, "flex");
      this.$("layout").classList.toggle("grid-cols-[17rem_23rem_minmax(0,1fr)]", !sessionOnly);
      this.$("layout").classList.toggle("grid-cols-1", sessionOnly);
      const scope = this.$("scope-label");
      scope.textContent = sessionOnly ? "Single-session access" : "";
      C.setVisible(scope, sessionOnly);
      const linked = sessionOnly ? credentials.sessionId : this.linkedSessionId();
      if (!sessionOnly) {
        try {
          const [response, options] = await Promise.all([this.api.metadataFields(), this.api.searchOptions()]);
          this.filters.setFields(response.fields);
          this.filters.setOptions(options);
          this.results.source = { database: options.database, collection: options.collection };
          this.results.metadataOrder = this.filters.metadataOrder();
        } catch (error) {
          if (this.handleAuthError(error)) return;
          this.filters.showError(error.message);
        }
        await this.search(1);
      }
      if (linked) await this.openSession(linked);
    }

    /** 401 with stored credentials means they are stale: ask again instead of failing quietly. */
    handleAuthError(error) {
      if (error.status !== 401) return false;
      this.logout("Please enter the password again.");
      return true;
    }

    /** A new search from the first page: the form, the sort control and the page size. */
    async search(page) {
      const form = this.filters.values();
      this.query = Object.assign({ pageSize: this.query.pageSize }, form, this.results.sort(), { page, cursor: null });
      await this.run();
    }

    /** Next or previous page of the current search, continued from the API's cursor. */
    async page(direction, cursor) {
      if (!cursor) return;
      const page = Math.max(1, this.query.page + (direction === "next" ? 1 : -1));
      this.query = Object.assign({}, this.query, { page, cursor });
      await this.run();
    }

    async run() {
      // Only the latest search may render: a slower earlier answer must not replace a newer one.
      const ticket = (this.searchTicket = (this.searchTicket || 0) + 1);
      this.filters.showError(null);
      this.results.showLoading();
      try {
        const response = await this.api.search(this.query);
        if (ticket !== this.searchTicket) return;
        this.results.render(response);
      } catch (error) {
        if (ticket !== this.searchTicket) return;
        if (this.handleAuthError(error)) return;
        if (error.status === 422) this.filters.showError(error.message);
        this.results.showError(error.message);
      }
    }

    async openSession(sessionId) {
      this.results.setSelected(sessionId);
      const url = new URL(global.location.href);
      const sameSession = new URLSearchParams(url.search).get("session") === sessionId;
      url.search = new URLSearchParams({ session: sessionId }).toString();
      if (!sameSession) url.hash = ""; // a #message=... link belongs to its own session only
      global.history.replaceState(null, "", url.toString());
      try {
        await this.detail.open(sessionId);
      } catch (error) {
        if (this.handleAuthError(error)) return;
        this.detail.showError(error.status === 404 ? "This session does not exist." : error.message);
      }
    }

    logout(message) {
      this.api.setCredentials(null);
      try {
        global.sessionStorage.removeItem(STORAGE_KEY);
      } catch (error) {
        /* storage disabled: nothing was saved */
      }
      this.detail.clear();
      C.setVisible(this.$("logout"), false);
      this.showLogin(message);
    }

    // The password is kept for this tab only (sessionStorage), so a reload does not ask again.
    saveCredentials(credentials) {
      try {
        global.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
      } catch (error) {
        /* storage disabled: the user logs in again after a reload */
      }
    }

    loadCredentials() {
      try {
        const saved = JSON.parse(global.sessionStorage.getItem(STORAGE_KEY) || "null");
        if (!saved || !saved.password) return null;
        if (saved.scope === "session" && saved.sessionId !== this.linkedSessionId()) return null;
        return saved;
      } catch (error) {
        return null;
      }
    }
  }

  global.SessionViewerApp = { APIClient, APIError, FilterPanel, ResultsList, SessionDetail, SessionViewer };

  document.addEventListener("DOMContentLoaded", () => {
    global.sessionViewer = new SessionViewer(global.SESSION_VIEWER_CONFIG);
    global.sessionViewer.start();
  });
})(window);
