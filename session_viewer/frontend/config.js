// Where the frontend finds the Session Viewer API.
//  - `make run` here (port 8883) talks to the backend started with `make dev` (port 8882).
//  - When the backend serves this folder itself (SERVE_FRONTEND=true, `make demo`), it replaces
//    this file with one that sets apiBaseUrl to "" (same origin).
// Edit apiBaseUrl for other setups. The backend URL is deliberately not read from the page URL:
// a crafted link must never be able to send the password you type to another server.
window.SESSION_VIEWER_CONFIG = Object.assign(
  {
    apiBaseUrl: "http://localhost:8882",
    healthIntervalMs: 30000,
  },
  window.SESSION_VIEWER_CONFIG || {},
);
