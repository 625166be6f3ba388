/* Sisada GraphiQL bootstrap: local assets only, bearer token from a text box (localStorage). */
(function () {
  "use strict";

  var STORAGE_KEY = "sisada.graphiql.bearerToken";
  var GRAPHQL_URL = "/graphql";

  function load() {
    try {
      return window.localStorage.getItem(STORAGE_KEY) || "";
    } catch (e) {
      return "";
    }
  }

  function save(value) {
    try {
      if (value) window.localStorage.setItem(STORAGE_KEY, value);
      else window.localStorage.removeItem(STORAGE_KEY);
    } catch (e) {
      /* storage disabled: the token still works for this page view */
    }
  }

  // Accept "eyJ...", "Bearer eyJ..." or "Authorization: Bearer eyJ..." and keep only the token.
  function normalise(raw) {
    return String(raw || "")
      .trim()
      .replace(/^authorization\s*:\s*/i, "")
      .replace(/^bearer\s+/i, "")
      .trim();
  }

  var input = document.getElementById("sisada-token");
  var toggle = document.getElementById("sisada-token-toggle");
  var clear = document.getElementById("sisada-token-clear");
  var status = document.getElementById("sisada-token-status");
  var token = normalise(load());

  function showStatus() {
    status.textContent = token ? "token set" : "no token (anonymous)";
  }

  input.value = token;
  showStatus();
  input.addEventListener("input", function () {
    token = normalise(input.value);
    save(token);
    showStatus();
  });
  toggle.addEventListener("click", function () {
    var hidden = input.type === "password";
    input.type = hidden ? "text" : "password";
    toggle.textContent = hidden ? "Hide" : "Show";
  });
  clear.addEventListener("click", function () {
    input.value = "";
    token = "";
    save("");
    showStatus();
    input.focus();
  });

  // The stated purpose (policies/trail.polar): identity fields are recorded in the access
  // trail with it, and roles that must state one read them only with one they may state.
  var PURPOSE_KEY = "sisada.graphiql.purpose";
  var purposeInput = document.getElementById("sisada-purpose");
  var purpose = "";
  try {
    purpose = window.localStorage.getItem(PURPOSE_KEY) || "";
  } catch (e) {
    purpose = "";
  }
  purposeInput.value = purpose;
  purposeInput.addEventListener("input", function () {
    purpose = purposeInput.value.trim();
    try {
      if (purpose) window.localStorage.setItem(PURPOSE_KEY, purpose);
      else window.localStorage.removeItem(PURPOSE_KEY);
    } catch (e) {
      /* storage disabled: the purpose still applies to this page view */
    }
  });

  var root = document.getElementById("graphiql");
  if (!window.React || !window.ReactDOM || !window.GraphiQL) {
    root.textContent = "GraphiQL assets failed to load from /graphiql-static/.";
    return;
  }

  var baseFetcher = window.GraphiQL.createFetcher({ url: GRAPHQL_URL });

  // The token is read on every request, so editing the box takes effect immediately.
  // Headers typed into GraphiQL's own "Headers" tab are merged after it and win.
  function fetcher(graphQLParams, opts) {
    var headers = {};
    if (token) headers.Authorization = "Bearer " + token;
    if (purpose) headers["Sisada-Purpose"] = purpose;
    var extra = (opts && opts.headers) || {};
    for (var k in extra) {
      if (Object.prototype.hasOwnProperty.call(extra, k)) headers[k] = extra[k];
    }
    var merged = {};
    for (var o in opts || {}) {
      if (Object.prototype.hasOwnProperty.call(opts, o)) merged[o] = opts[o];
    }
    merged.headers = headers;
    return baseFetcher(graphQLParams, merged);
  }

  root.textContent = "";
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      shouldPersistHeaders: false,
    })
  );
})();
