/* Sisada GraphiQL bootstrap: local assets only, bearer token from a text box (localStorage);
   in demo mode a role picker fills the token and purpose from /graphiql/demo-tokens. */
(function () {
  "use strict";

  var STORAGE_KEY = "sisada.graphiql.bearerToken";
  var GRAPHQL_URL = "/graphql";
  var DEMO_TOKENS_URL = "/graphiql/demo-tokens";

  // What the editor opens with (until the browser has a query of its own): a frontend's
  // first screen. Every role may send it; what comes back is the role's own view.
  var EXAMPLE_QUERY = [
    "# Sisada gateway: every field resolves per role from the policy (policies/*.polar).",
    "# Paste a token above (in the demo: pick a role), then run it with Ctrl-Enter.",
    "# A field your role may not read is null and listed in `redactedFields`; a root field",
    "# it may not use is a FORBIDDEN error. Names are read only with a stated purpose.",
    "query ActivePermitsExpiringFirst {",
    "  sisadaMe { role area officerId }",
    "  areas(level: KECAMATAN) { code name foreignerCount }",
    "  foreigners(first: 5, filter: {permitStatus: ACTIVE}, orderBy: PERMIT_EXPIRES_ON) {",
    "    totalCount",
    "    nodes {",
    "      id",
    "      fullName",
    "      nationality",
    "      permitType",
    "      permitExpiresOn",
    "      residence { streetAddress areaCode }",
    "      redactedFields",
    "    }",
    "  }",
    "}",
    "",
  ].join("\n");

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

  function setPurpose(value) {
    purpose = value;
    purposeInput.value = value;
    try {
      if (value) window.localStorage.setItem(PURPOSE_KEY, value);
      else window.localStorage.removeItem(PURPOSE_KEY);
    } catch (e) {
      /* storage disabled */
    }
  }

  // Demo mode: the server lists a token per role of its policy (404 anywhere else, and
  // then the picker stays hidden). Picking a role fills the token and its first purpose.
  var picker = document.getElementById("sisada-role");
  var pickerLabel = document.getElementById("sisada-role-label");
  var purposeList = document.getElementById("sisada-purposes");
  var demoRoles = {};

  function pick(name) {
    var role = demoRoles[name];
    if (!role) return;
    token = role.token || "";
    input.value = token;
    save(token);
    setPurpose(role.purposes.length ? role.purposes[0] : "");
    purposeList.textContent = "";
    role.purposes.forEach(function (p) {
      var option = document.createElement("option");
      option.value = p;
      purposeList.appendChild(option);
    });
    status.textContent = token ? "demo token: " + name : "no token (" + name + ")";
  }

  function describe(role) {
    var where = [];
    if (role.area) where.push(role.area);
    if (role.officerId !== null && role.officerId !== undefined) {
      where.push("officer " + role.officerId);
    }
    return role.role + (where.length ? " (" + where.join(", ") + ")" : "");
  }

  function offerDemoRoles(listing) {
    var roles = (listing.roles || []).slice();
    roles.push({ role: listing.anonymousRole, token: "", purposes: [], anonymous: true });
    roles.forEach(function (role) {
      demoRoles[role.role] = role;
      var option = document.createElement("option");
      option.value = role.role;
      option.textContent = role.anonymous ? role.role + " (no token)" : describe(role);
      picker.appendChild(option);
    });
    picker.hidden = false;
    pickerLabel.hidden = false;
    picker.addEventListener("change", function () {
      pick(picker.value);
    });
  }

  if (window.fetch) {
    window
      .fetch(DEMO_TOKENS_URL, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        // A 404 (not in demo mode) is read to its end too: a body left unread keeps
        // the request open in the browser.
        return response.ok ? response.json() : response.text().then(function () {
          return null;
        });
      })
      .then(function (listing) {
        if (listing && listing.roles) offerDemoRoles(listing);
      })
      .catch(function () {
        /* not in demo mode, or unreachable: paste a token instead */
      });
  }

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
      defaultQuery: EXAMPLE_QUERY,
      defaultEditorToolsVisibility: true,
      shouldPersistHeaders: false,
    })
  );
})();
