/* autotrack dashboard: runs table, run page, compare view. No build step, no dependencies but
 * uPlot (vendored). Every piece of recorded text reaches the page through text nodes or
 * setAttribute, never through innerHTML, so a run named "<script>..." shows as those characters.
 * The same script renders a self-contained report when the page carries its data inline
 * (<script id="autotrack-data" type="application/json">). */
(function () {
  "use strict";

  var DATA_EL = document.getElementById("autotrack-data");
  var REPORT = DATA_EL ? JSON.parse(DATA_EL.textContent) : null;
  var TOKEN_KEY = "autotrack-token";
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#65a30d",
                "#4f46e5", "#b45309", "#0d9488", "#7c3aed"];
  var app = document.getElementById("app");
  var timer = null;        // the live view's refresh, cleared on every navigation
  var charts = [];         // uPlot instances of the current view
  var selected = new Set(JSON.parse(sessionStorage.getItem("autotrack-selected") || "[]"));

  // -- DOM -------------------------------------------------------------------------------------
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "class") el.className = v;
        else if (k === "text") el.textContent = String(v);
        else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
        else if (k === "value") el.value = v;
        else if (k === "checked") el.checked = !!v;
        else el.setAttribute(k, v === true ? "" : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function append(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(el, c); }); return; }
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }

  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

  // -- formatting ------------------------------------------------------------------------------
  function num(v) {
    if (typeof v !== "number") return v === null || v === undefined ? "" : String(v);
    if (Number.isInteger(v)) return String(v);
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
    return String(Number(v.toPrecision(5)));
  }

  function val(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return num(v);
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function bytes(n) {
    if (typeof n !== "number") return "";
    var units = ["B", "KB", "MB", "GB", "TB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + " " + units[i];
  }

  function duration(s) {
    if (typeof s !== "number") return "";
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  }

  function when(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString();
  }

  function short(id) { return String(id || "").slice(0, 8); }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function statusBadge(status) {
    return h("span", {"class": "status status-" + String(status).replace(/[^a-z]/g, ""), "data-status": status},
      status === "running" ? h("span", {"class": "pulse", "aria-hidden": "true"}) : null, String(status));
  }

  // -- data: the server's JSON, or the report's embedded copy --------------------------------
  var askingToken = null;

  function askToken(message) {
    if (askingToken) return askingToken;
    askingToken = new Promise(function (resolve) {
      var input = h("input", {type: "password", name: "token", autocomplete: "off", "data-testid": "token-input",
                              placeholder: "token"});
      var form = h("form", {"class": "token-form", "data-testid": "token-form"},
        h("h2", {text: "This server needs a token"}),
        h("p", {text: message || "Enter the token the server was started with (AUTOTRACK_TOKEN). It is kept for this tab only."}),
        input, h("button", {type: "submit", text: "Continue"}));
      var overlay = h("div", {"class": "overlay"}, form);
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, input.value.trim());
        document.body.removeChild(overlay);
        askingToken = null;
        resolve();
      });
      document.body.appendChild(overlay);
      input.focus();
    });
    return askingToken;
  }

  // Deleting a run: an admin token's, on a server that writes (not `autotrack ui`), confirmed.
  var whoami = null, listAfresh = false;
  function deleteButton(run) {
    if (REPORT) return null;
    var holder = h("span", {"class": "admin-tools"});
    whoami = whoami || Promise.all([api("/api/v1/whoami"), api("/ui/api/info")]).catch(function () { return [{}, {}]; });
    whoami.then(function (got) {
      var me = got[0] || {}, info = got[1] || {};
      if (me.scope !== "admin" || info.read_only) return;
      holder.appendChild(h("button", {type: "button", "class": "danger", "data-testid": "delete-run", onclick: function () {
        if (!window.confirm("Delete run " + run.name + " (" + run.id + ")? Its records and the artifacts no other run uses are removed for good.")) return;
        fetch("/api/v1/runs/" + encodeURIComponent(run.id), {method: "DELETE", headers: authHeaders()}).then(function (res) {
          return res.json().catch(function () { return {}; }).then(function (body) {
            if (!res.ok) throw new Error(body.error || res.statusText);
            listAfresh = true;
            location.hash = "#/";
          });
        }).catch(function (err) { window.alert("Not deleted: " + err.message); });
      }}, "delete run"));
    });
    return holder;
  }

  function authHeaders() {
    var token = sessionStorage.getItem(TOKEN_KEY);
    return token ? {Authorization: "Bearer " + token} : {};
  }

  function api(path) {
    if (REPORT) return Promise.resolve(reportApi(path));
    return fetch(path, {headers: authHeaders()}).then(function (res) {
      if (res.status === 401) {
        var had = sessionStorage.getItem(TOKEN_KEY);
        return askToken(had ? "That token was not accepted; try again." : null).then(function () { return api(path); });
      }
      return res.json().catch(function () { return {error: res.statusText}; }).then(function (body) {
        if (!res.ok) throw new Error(body.error || res.statusText);
        return body;
      });
    });
  }

  function reportApi(path) {
    var url = new URL(path, "http://report/");
    var parts = url.pathname.split("/").filter(Boolean).slice(2);  // after /ui/api
    if (parts[0] === "compare") return REPORT.compare;
    if (parts[0] === "runs" && parts.length === 1) {
      var rows = REPORT.order.map(function (id) { return REPORT.runs[id]; });
      return {total: rows.length, all: rows.length, offset: 0, limit: rows.length, rows: rows, running: 0,
              facets: {}, param_keys: [], metric_keys: []};
    }
    if (parts[0] === "runs" && parts[2] === "series") return REPORT.series[parts[1]];
    if (parts[0] === "runs") return REPORT.runs[parts[1]];
    throw new Error("not in this report: " + path);
  }

  function artifactUrl(run, art) {
    return "ui/api/runs/" + encodeURIComponent(run) + "/artifacts/" + encodeURIComponent(art.sha256);
  }

  function fetchDownload(run, art) {  // with a token a link cannot carry the header: fetch, then save
    fetch(artifactUrl(run, art), {headers: authHeaders()}).then(function (res) {
      if (!res.ok) throw new Error(res.statusText);
      return res.blob();
    }).then(function (blob) {
      var a = h("a", {href: URL.createObjectURL(blob), download: art.name.split("/").pop()});
      document.body.appendChild(a); a.click(); document.body.removeChild(a);
    }).catch(showError);
  }

  // -- routing ---------------------------------------------------------------------------------
  function parseHash() {
    var raw = location.hash.replace(/^#/, "") || "/";
    var q = raw.indexOf("?");
    var path = q < 0 ? raw : raw.slice(0, q);
    var params = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
    return {parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: params};
  }

  function go(hash) { if (location.hash === hash) render(); else location.hash = hash; }

  function render() {
    if (timer) { clearTimeout(timer); timer = null; }
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
    document.body.removeAttribute("data-ready");
    var r = parseHash();
    var view;
    if (r.parts[0] === "run" && r.parts[1]) view = viewRun(r.parts[1], r.params);
    else if (r.parts[0] === "compare" && r.parts[1]) view = viewCompare(r.parts[1].split(","), r.params);
    else if (r.parts[0] === "models" && !REPORT) view = viewModels();
    else if (r.parts[0] === "model" && r.parts[1] && !REPORT) view = viewModel(r.parts[1], r.params);
    else if (REPORT) view = REPORT.order.length > 1 ? viewCompare(REPORT.order, r.params) : viewRun(REPORT.order[0], r.params);
    else view = viewRuns(r.params);
    Promise.resolve(view).catch(showError);
  }

  function showError(err) {
    var box = h("div", {"class": "error-box", role: "alert", "data-testid": "error"}, String(err && err.message || err));
    app.insertBefore(box, app.firstChild);
  }

  function header(crumbs) {
    document.title = REPORT ? (REPORT.title + " · autotrack report") : "autotrack";
    return h("header", {"class": "top"},
      h("a", {"class": "brand", href: "#/", text: "autotrack"}),
      crumbs.filter(Boolean).map(function (c) { return [h("span", {"class": "sep", text: "/"}), c]; }),
      h("span", {"class": "spacer"}),
      REPORT ? h("span", {"class": "muted", text: "report generated " + when(REPORT.generated) + " · autotrack " + REPORT.version})
             : h("nav", {"class": "nav"}, h("a", {href: "#/", "data-testid": "nav-runs", text: "runs"}),
                 h("a", {href: "#/models", "data-testid": "nav-models", text: "models"})));
  }

  // -- the runs table --------------------------------------------------------------------------
  var STATS = ["last", "min", "max"];

  function viewRuns(params) {
    var state = {
      experiment: params.get("experiment") || "", status: params.get("status") || "",
      framework: params.get("framework") || "", q: params.get("q") || "",
      sort: params.get("sort") || "start_time", order: params.get("order") || "desc",
      offset: parseInt(params.get("offset") || "0", 10) || 0, stat: params.get("stat") || "last",
      cols: params.get("cols") ? params.get("cols").split(",").filter(Boolean) : null,
    };
    var limit = 50;

    function hashFor(changes) {
      var s = Object.assign({}, state, changes);
      var p = new URLSearchParams();
      ["experiment", "status", "framework", "q"].forEach(function (k) { if (s[k]) p.set(k, s[k]); });
      if (s.sort !== "start_time") p.set("sort", s.sort);
      if (s.order !== "desc") p.set("order", s.order);
      if (s.offset) p.set("offset", s.offset);
      if (s.stat !== "last") p.set("stat", s.stat);
      if (s.cols) p.set("cols", s.cols.join(","));
      var text = p.toString();
      return "#/" + (text ? "?" + text : "");
    }

    function query() {
      var p = new URLSearchParams({sort: state.sort, order: state.order, offset: state.offset, limit: limit});
      ["experiment", "status", "framework", "q"].forEach(function (k) { if (state[k]) p.set(k, state[k]); });
      if (listAfresh) { p.set("fresh", "1"); listAfresh = false; }  // a run was just deleted
      return "ui/api/runs?" + p.toString();
    }

    function load() {
      return api(query()).then(function (data) {
        draw(data);
        if (data.running > 0) timer = setTimeout(function () { load().catch(showError); }, 5000);
      });
    }

    function facetSelect(name, label, counts) {
      var opts = [h("option", {value: "", text: "any " + label})];
      Object.keys(counts || {}).forEach(function (k) {
        opts.push(h("option", {value: k, text: k + " (" + counts[k] + ")"}));
      });
      var sel = h("select", {name: name, "data-testid": "filter-" + name, "aria-label": label,
                             onchange: function () { var c = {offset: 0}; c[name] = sel.value; go(hashFor(c)); }}, opts);
      sel.value = state[name];
      return sel;
    }

    function draw(data) {
      var paramCols, metricCols;
      if (state.cols) {
        paramCols = state.cols.filter(function (c) { return c.indexOf("param:") === 0; }).map(function (c) { return c.slice(6); });
        metricCols = state.cols.filter(function (c) { return c.indexOf("metric:") === 0; }).map(function (c) { return c.slice(7); });
      } else {
        paramCols = data.param_keys.filter(function (k) { return k.varies; }).slice(0, 4).map(function (k) { return k.key; });
        metricCols = data.metric_keys.slice(0, 4).map(function (k) { return k.key; });
      }
      var search = h("input", {type: "search", placeholder: "filter: name, id, param=value…", value: state.q,
                               "data-testid": "filter-text", "aria-label": "filter text"});
      var debounce = null;
      search.addEventListener("input", function () {
        clearTimeout(debounce);
        debounce = setTimeout(function () { go(hashFor({q: search.value, offset: 0})); }, 300);
      });
      var statSel = h("select", {"aria-label": "metric value", "data-testid": "metric-stat",
                                 onchange: function () { go(hashFor({stat: statSel.value})); }},
        STATS.map(function (s) { return h("option", {value: s, text: s + " value"}); }));
      statSel.value = state.stat;
      var compareBtn = h("button", {"class": "primary", "data-testid": "compare-button", disabled: selected.size < 2,
                                    onclick: function () { go("#/compare/" + Array.from(selected).join(",")); }},
        "Compare " + (selected.size ? "(" + selected.size + ")" : ""));
      var clearBtn = selected.size ? h("button", {onclick: function () { selected.clear(); saveSelected(); draw(data); },
                                                  text: "clear selection"}) : null;

      var columnsPanel = h("details", {"class": "columns"}, h("summary", {text: "Columns"}),
        h("div", {"class": "columns-list"},
          h("strong", {text: "params"}),
          data.param_keys.map(function (k) { return columnToggle("param:" + k.key, k.key, paramCols.indexOf(k.key) >= 0); }),
          h("strong", {text: "metrics"}),
          data.metric_keys.map(function (k) { return columnToggle("metric:" + k.key, k.key, metricCols.indexOf(k.key) >= 0); })));

      function columnToggle(id, label, on) {
        var box = h("input", {type: "checkbox", checked: on, onchange: function () {
          var cols = paramCols.map(function (c) { return "param:" + c; }).concat(metricCols.map(function (c) { return "metric:" + c; }));
          if (box.checked) cols.push(id); else cols = cols.filter(function (c) { return c !== id; });
          go(hashFor({cols: cols}));
        }});
        return h("label", null, box, " ", label);
      }

      function th(label, sortKey, cls) {
        var active = state.sort === sortKey;
        var arrow = active ? (state.order === "desc" ? " ▼" : " ▲") : "";
        return h("th", {"class": (cls || "") + (active ? " sorted" : ""), "data-sort": sortKey, scope: "col"},
          h("button", {"class": "sort", title: "sort by " + label, onclick: function () {
            var order = active && state.order === "desc" ? "asc" : "desc";
            go(hashFor({sort: sortKey, order: order, offset: 0}));
          }}, label + arrow));
      }

      var allBox = h("input", {type: "checkbox", "aria-label": "select all on this page", onchange: function () {
        data.rows.forEach(function (r) { if (allBox.checked) selected.add(r.id); else selected.delete(r.id); });
        saveSelected(); draw(data);
      }});
      allBox.checked = data.rows.length > 0 && data.rows.every(function (r) { return selected.has(r.id); });
      var byCol = data.rows.some(function (r) { return r.owner; });  // runs a tracking server took from tokens
      var head = h("tr", null, h("th", {"class": "pick"}, allBox),
        th("name", "name"), th("status", "status"), th("experiment", "experiment"), th("framework", "framework"),
        byCol ? h("th", {scope: "col", text: "by"}) : null,
        th("started", "start_time"), th("duration", "duration", "num"),
        metricCols.map(function (k) { return th(k, "metric:" + k + ":" + state.stat, "metric num"); }),
        paramCols.map(function (k) { return th(k, "param:" + k, "param"); }));
      var body = data.rows.map(function (r) {
        var box = h("input", {type: "checkbox", checked: selected.has(r.id), "aria-label": "select " + r.name,
                              "data-testid": "select-run", onchange: function () {
          if (box.checked) selected.add(r.id); else selected.delete(r.id);
          saveSelected(); draw(data);
        }});
        return h("tr", {"data-run-id": r.id, "class": r.status === "running" ? "live" : null},
          h("td", {"class": "pick"}, box),
          h("td", {"class": "name"}, h("a", {href: "#/run/" + encodeURIComponent(r.id), "data-testid": "run-link"}, r.name),
            r.parent_id ? h("span", {"class": "muted child", title: "child of " + r.parent_id, text: " ↳"}) : null,
            modelBadges(r.models)),
          h("td", r.problems ? {title: problemLines(r.problems), "data-testid": "problem"} : null, statusBadge(r.status)),
          h("td", {text: r.experiment}), h("td", {text: r.framework || "manual"}),
          byCol ? h("td", {"data-testid": "owner", text: r.owner || ""}) : null,
          h("td", {title: r.start_time, text: when(r.start_time)}),
          h("td", {"class": "num", text: duration(r.duration)}),
          metricCols.map(function (k) {
            var m = r.metrics[k];
            return h("td", {"class": "num", title: m ? "last " + val(m.last) + " · min " + val(m.min) + " · max " + val(m.max) + " · " + plural(m.count, "point") : null,
                            text: m ? val(m[state.stat]) : ""});
          }),
          paramCols.map(function (k) { return h("td", {"class": "param", text: val(r.params[k])}); }));
      });
      var last = Math.min(data.offset + data.rows.length, data.total);
      var pager = h("div", {"class": "pager"},
        h("button", {disabled: data.offset === 0, "data-testid": "prev-page",
                     onclick: function () { go(hashFor({offset: Math.max(0, data.offset - limit)})); }}, "‹ previous"),
        h("span", {"data-testid": "page-info", text: (data.total ? (data.offset + 1) + "–" + last : "0") + " of " +
                   data.total.toLocaleString() + (data.total !== data.all ? " (" + data.all.toLocaleString() + " in the store)" : "")}),
        h("button", {disabled: last >= data.total, "data-testid": "next-page",
                     onclick: function () { go(hashFor({offset: data.offset + limit})); }}, "next ›"));

      var wasOpen = app.querySelector("details.columns[open]") !== null;  // a refresh keeps the panel open
      if (wasOpen) columnsPanel.open = true;
      clear(app);
      append(app, [
        header([h("span", {text: "runs"})]),
        h("div", {"class": "toolbar"},
          facetSelect("experiment", "experiment", data.facets.experiment),
          facetSelect("status", "status", data.facets.status),
          facetSelect("framework", "framework", data.facets.framework),
          search, statSel, columnsPanel, h("span", {"class": "spacer"}),
          data.running ? h("span", {"class": "live-note", text: data.running + " running · refreshing"}) : null,
          clearBtn, compareBtn),
        h("div", {"class": "table-wrap"},
          h("table", {"class": "runs", "data-testid": "runs-table"}, h("thead", null, head), h("tbody", null, body))),
        data.total ? null : h("p", {"class": "empty", text: data.all ? "No run matches these filters." :
          "No runs yet. Train something with autotrack.autolog() and they appear here."}),
        pager,
      ]);
      if (document.activeElement === document.body && state.q) { search.focus(); search.setSelectionRange(search.value.length, search.value.length); }
      document.body.setAttribute("data-ready", "runs");
    }

    return load();
  }

  function saveSelected() { sessionStorage.setItem("autotrack-selected", JSON.stringify(Array.from(selected))); }

  // -- charts ----------------------------------------------------------------------------------
  var X_LABELS = {step: "step", epoch: "epoch", time: "seconds since start"};

  function pointsOf(s, xKind) {
    var xs = s[xKind] || [], pts = [];
    for (var i = 0; i < s.value.length; i++) {
      var x = xs[i], y = s.value[i];
      if (typeof x !== "number") x = xKind === "step" ? i : null;  // steps missing: draw against order
      if (typeof x === "number" && typeof y === "number") pts.push([x, y]);
    }
    pts.sort(function (a, b) { return a[0] - b[0]; });
    return [pts.map(function (p) { return p[0]; }), pts.map(function (p) { return p[1]; })];
  }

  function chart(container, name, lines, xKind) {
    // lines: [{label, color, series}] ; one metric, one or more runs
    var tables = lines.map(function (l) { return pointsOf(l.series, xKind); });
    var data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    var width = Math.max(280, container.clientWidth - 8 || 460);
    var opts = {
      width: width, height: 220, legend: {show: lines.length > 1, live: true},
      scales: {x: {time: false}},
      axes: [{label: X_LABELS[xKind], size: 40}, {size: 56}],
      cursor: {drag: {x: true, y: false}},
      series: [{label: X_LABELS[xKind]}].concat(lines.map(function (l) {
        return {label: l.label, stroke: l.color, width: 1.5, spanGaps: true, points: {show: data[0].length < 60}};
      })),
    };
    var plot = new uPlot(opts, data, container);
    charts.push(plot);
    return plot;
  }

  function chartCard(name, lines, xKind, note) {
    var box = h("div", {"class": "chart", "data-metric": name});
    var card = h("figure", {"class": "card chart-card"}, h("figcaption", null, h("strong", {text: name}), note ? h("span", {"class": "muted", text: " " + note}) : null), box);
    return {card: card, draw: function () { chart(box, name, lines, xKind); }};
  }

  function xKinds(seriesList) {
    var kinds = ["step", "epoch", "time"];
    return kinds.filter(function (k) {
      return seriesList.some(function (s) { return (s[k] || []).some(function (x) { return typeof x === "number"; }); });
    });
  }

  function xPicker(current, kinds, onPick) {
    var sel = h("select", {"aria-label": "x axis", "data-testid": "x-axis", onchange: function () { onPick(sel.value); }},
      kinds.map(function (k) { return h("option", {value: k, text: "x: " + X_LABELS[k]}); }));
    sel.value = current;
    return sel;
  }

  // -- system metrics: what the hardware did (system/... series), on the training step ------------
  var SYSTEM_GROUPS = ["process", "cpu", "memory", "swap", "disk", "network", "gpu"];
  var SYSTEM_CHARTS = ["process/cpu_percent", "process/memory_rss_bytes", "gpu/*/utilization_percent",
    "gpu/*/process_memory_bytes", "gpu/*/memory_used_bytes", "gpu/*/power_watts", "gpu/*/temperature_c",
    "gpu/*/sm_clock_mhz", "cpu/percent", "memory/used_bytes", "swap/used_bytes", "process/disk_read_bytes",
    "process/disk_write_bytes", "network/rx_bytes", "network/tx_bytes"];

  function isSystem(n) { return String(n).indexOf("system/") === 0; }

  // system/[node/]gpu/0/power_watts -> {chart: "gpu/*/power_watts", label: "node gpu 0"}
  function systemKey(n) {
    var parts = n.split("/").slice(1), node = null;
    if (SYSTEM_GROUPS.indexOf(parts[0]) < 0 && parts.length > 1) node = parts.shift();
    var chart = parts.join("/"), label = node || "";
    if (parts[0] === "gpu" && parts.length === 3) { chart = "gpu/*/" + parts[2]; label = (node ? node + " " : "") + "gpu " + parts[1]; }
    return {chart: chart, label: label};
  }

  function scaled(s, by) {  // bytes drawn in MiB or GiB
    return Object.assign({}, s, {value: s.value.map(function (v) { return typeof v === "number" ? v / by : v; })});
  }

  // one chart per kind of figure, a line per run, node and GPU; bytes in MiB or GiB
  function systemCards(runs, seriesList, x) {
    var groups = {};
    runs.forEach(function (r, i) {
      Object.keys(seriesList[i] || {}).filter(isSystem).sort().forEach(function (n) {
        var k = systemKey(n);
        if (SYSTEM_CHARTS.indexOf(k.chart) < 0) return;
        var label = runs.length > 1 ? r.name + (k.label ? " · " + k.label : "") : (k.label || r.name);
        (groups[k.chart] = groups[k.chart] || []).push({label: label, series: seriesList[i][n]});
      });
    });
    return SYSTEM_CHARTS.filter(function (c) { return groups[c]; }).map(function (c) {
      var lines = groups[c], title = "system/" + c;
      if (/_bytes$/.test(c)) {
        var top = Math.max.apply(null, lines.map(function (l) { return Math.max.apply(null, l.series.value.filter(function (v) { return typeof v === "number"; }).concat([0])); }));
        var by = top >= Math.pow(1024, 3) ? Math.pow(1024, 3) : Math.pow(1024, 2);
        title += by > Math.pow(1024, 2) ? " (GiB)" : " (MiB)";
        lines = lines.map(function (l) { return {label: l.label, series: scaled(l.series, by)}; });
      }
      return chartCard(title, lines.map(function (l, j) { return {label: l.label, color: COLORS[j % COLORS.length], series: l.series}; }), x, null);
    });
  }

  function systemPanel(sys, cards) {
    return [h("p", {"class": "muted", "data-testid": "system-info", text: sys.info}),
      sys.peaks.length ? kvTable(Object.fromEntries(sys.peaks.map(function (p) { return ["peak " + p[0], p[1]]; })), "system-peaks", null, true) : null,
      cards.length ? h("div", {"class": "charts", "data-testid": "system-charts"}, cards.map(function (c) { return c.card; })) : null,
      sys.rows.length ? h("details", null, h("summary", {text: sys.rows.length + " series: mean, max, last"}),
        h("table", {"class": "kv", "data-testid": "system-table"},
          h("thead", null, h("tr", null, ["series", "mean", "max", "last", "samples"].map(function (t) { return h("th", {text: t}); }))),
          h("tbody", null, sys.rows.map(function (r) {
            return h("tr", {"data-series": r.name}, h("th", {scope: "row", text: r.name.slice(7)}), h("td", {"class": "num", text: r.mean}),
              h("td", {"class": "num", text: r.max}), h("td", {"class": "num", text: r.last}), h("td", {"class": "num", text: r.count}));
          })))) : null];
  }

  // -- one run ---------------------------------------------------------------------------------
  function kvTable(obj, testid, emptyText, keepOrder) {
    var keys = Object.keys(obj || {});
    if (!keepOrder) keys.sort();
    if (!keys.length) return h("p", {"class": "muted", text: emptyText || "none recorded"});
    return h("table", {"class": "kv", "data-testid": testid},
      h("tbody", null, keys.map(function (k) { return h("tr", null, h("th", {scope: "row", text: k}), h("td", {text: val(obj[k])})); })));
  }

  function section(title, id, content) {
    return h("section", {"class": "card", id: id, "data-testid": "section-" + id}, h("h2", {text: title}), content);
  }

  // files of a run that could not be used (a corrupt run.json, skipped segments): which and why
  function problemLines(problems) {
    return (problems || []).map(function (p) { return p.file + ": " + p.reason; }).join("\n");
  }

  function problemBox(problems) {
    if (!problems || !problems.length) return null;
    return h("div", {"class": "problems", role: "status", "data-testid": "problems"},
      h("strong", {text: problems.length + (problems.length > 1 ? " files" : " file") + " of this run could not be used; the rest is shown"}),
      h("ul", null, problems.map(function (p) {
        return h("li", null, h("span", {"class": "mono", text: p.file}), h("span", {text: ": " + p.reason}));
      })));
  }

  function artifactTable(run) {
    if (!run.artifacts.length) return h("p", {"class": "muted", text: "none recorded"});
    return h("table", {"class": "artifacts", "data-testid": "artifacts"},
      h("thead", null, h("tr", null, ["name", "kind", "size", "sha256", "state", "metadata"].map(function (t) { return h("th", {text: t}); }))),
      h("tbody", null, run.artifacts.map(function (a) {
        var md = a.metadata || {};
        var flags = [], released = !!md.superseded && md.kept === false;
        if (md.best === true) flags.push(h("span", {"class": "flag best", text: "best"}));
        if (released) flags.push(h("span", {"class": "flag released", title: "superseded, and its bytes were freed: it cannot be downloaded", text: "released"}));
        else if (md.superseded) flags.push(h("span", {"class": "flag superseded", title: "superseded; its bytes are kept", text: "superseded (kept)"}));
        var rest = {};
        Object.keys(md).forEach(function (k) { if (["best", "superseded", "kept"].indexOf(k) < 0) rest[k] = md[k]; });
        var link;
        if (REPORT || released) link = h("span", {text: a.name});
        else {
          // without a token, a plain link: the browser streams the file to disk
          link = !sessionStorage.getItem(TOKEN_KEY)
            ? h("a", {href: artifactUrl(run.id, a), download: a.name.split("/").pop(), "data-testid": "artifact-link", text: a.name})
                     : h("a", {href: "#", "data-testid": "artifact-link", text: a.name,
                               onclick: function (ev) { ev.preventDefault(); fetchDownload(run.id, a); }});
        }
        return h("tr", {"data-artifact": a.name, "class": released ? "released" : null}, h("td", null, link), h("td", {text: a.kind}), h("td", {"class": "num", text: bytes(a.size)}),
          h("td", {"class": "mono", title: a.sha256, text: a.sha256.slice(0, 12)}), h("td", null, flags),
          h("td", {"class": "small", text: Object.keys(rest).length ? JSON.stringify(rest) : ""}));
      })));
  }

  // a dataset made of parts ((X, y), a dict of arrays): its row, then one indented row per part
  function dataRows(label, d, depth) {
    d = d || {};
    var parts = depth < 3 && Array.isArray(d.parts) ? d.parts.filter(function (p) { return p && typeof p === "object"; }) : [];
    var kind = val(d.type), size = d.shape ? val(d.shape) : val(d.rows);
    if (parts.length) {
      kind += " (" + plural(parts.length, "part") + ")";
      var rows = parts.map(function (p) { return p.rows; });
      size = rows.every(function (r) { return r === rows[0] && typeof r === "number"; }) ? plural(rows[0], "row") : "";
    }
    var out = [h("tr", {"data-dataset": label, "class": depth ? "part" : null},
      h("th", {scope: "row", style: depth ? "padding-left:" + (0.5 + depth * 1.2) + "em" : null, text: label}),
      h("td", {text: kind}), h("td", {text: size}), h("td", {text: val(d.dtype)}),
      h("td", {"class": "mono", title: d.sha256 || "", text: d.sha256 ? String(d.sha256).slice(0, 16) : ""}))];
    parts.forEach(function (p, i) { out = out.concat(dataRows(typeof p.key === "string" ? p.key : "[" + i + "]", p, depth + 1)); });
    return out;
  }

  function dataTable(data) {
    var names = Object.keys(data || {});
    if (!names.length) return h("p", {"class": "muted", text: "none recorded"});
    return h("table", {"class": "kv", "data-testid": "data"}, h("thead", null, h("tr", null, ["dataset", "type", "shape / rows", "dtype", "sha256"].map(function (t) { return h("th", {text: t}); }))),
      h("tbody", null, names.map(function (n) { return dataRows(n, data[n], 0); })));
  }

  // metrics with a single value (a score at the end of a fit): a table, not charts of one dot
  function valuesTable(names, runs, testid) {
    var many = runs.length > 1;
    return h("table", {"class": "kv values", "data-testid": testid},
      h("thead", null, h("tr", null, h("th", {text: "metric"}),
        many ? runs.map(function (r, i) { return h("th", null, h("span", {"class": "swatch", style: "background:" + COLORS[i % COLORS.length]}), " " + r.name); })
             : [h("th", {text: "value"}), h("th", {text: "step"})])),
      h("tbody", null, names.map(function (n) {
        return h("tr", {"data-metric": n}, h("th", {scope: "row", text: n}), runs.map(function (r) {
          var m = (r.metrics || {})[n];
          var cell = h("td", {"class": "num" + (m ? "" : " absent"), text: m ? val(m.last) : "—"});
          return many ? cell : [cell, h("td", {"class": "num", text: m ? val(m.step) : ""})];
        }));
      })));
  }

  function environment(env) {
    env = env || {};
    var git = env.git || {}, hw = env.hardware || {}, cmd = env.command || {}, py = env.python || {};
    var facts = {
      python: py.version, implementation: py.implementation, platform: env.platform && (env.platform.platform || env.platform.system),
      host: env.hostname, cpu: hw.cpu && (hw.cpu.model || hw.cpu.count ? (hw.cpu.model || "") + (hw.cpu.count ? " × " + hw.cpu.count : "") : hw.cpu),
      memory: hw.memory && typeof hw.memory.total_bytes === "number" ? bytes(hw.memory.total_bytes) : hw.memory,
      gpus: hw.gpus && hw.gpus.length ? hw.gpus.map(function (g) { return g.name || val(g); }).join(", ") : "none",
      "git commit": git.commit, "git branch": git.branch, "git remote": git.remote,
      "git dirty": git.dirty === undefined ? undefined : String(git.dirty),
      command: cmd.argv ? cmd.argv.join(" ") : undefined, cwd: cmd.cwd,
    };
    Object.keys(facts).forEach(function (k) { if (facts[k] === undefined || facts[k] === null || facts[k] === "") delete facts[k]; });
    var frameworks = env.frameworks || {};
    var packages = env.packages || {};
    var pkgFilter = h("input", {type: "search", placeholder: "filter packages", "aria-label": "filter packages"});
    var pkgTable = kvTable(packages, "packages");
    pkgFilter.addEventListener("input", function () {
      var q = pkgFilter.value.toLowerCase();
      Array.prototype.forEach.call(pkgTable.querySelectorAll("tr"), function (tr) {
        tr.style.display = tr.textContent.toLowerCase().indexOf(q) >= 0 ? "" : "none";
      });
    });
    return [kvTable(facts, "environment", null, true),
      Object.keys(frameworks).length ? [h("h3", {text: "frameworks"}), kvTable(frameworks, "frameworks")] : null,
      git.diff ? h("details", {"class": "diff"}, h("summary", {text: "uncommitted changes (git diff" + (git.diff_truncated ? ", truncated" : "") + ")"}),
                   h("pre", {"data-testid": "git-diff", text: git.diff})) : null,
      h("details", null, h("summary", {text: plural(Object.keys(packages).length, "package")}), pkgFilter, pkgTable)];
  }

  function viewRun(id, params) {
    var xKind = params.get("x") || null;

    function load(first) {
      return Promise.all([api("ui/api/runs/" + encodeURIComponent(id)), api("ui/api/runs/" + encodeURIComponent(id) + "/series")])
        .then(function (res) {
          var scroll = window.scrollY;
          draw(res[0], res[1]);
          if (!first) window.scrollTo(0, scroll);
          if (res[0].status === "running" && !REPORT) timer = setTimeout(function () { load(false).catch(showError); }, 3000);
        });
    }

    function draw(run, series) {
      charts.forEach(function (c) { c.destroy(); });
      charts = [];
      var single = (run.single_value_metrics || []).filter(function (n) { return !isSystem(n); });
      var names = Object.keys(series).filter(function (n) { return single.indexOf(n) < 0 && !isSystem(n); }).sort();
      var kinds = xKinds(names.map(function (n) { return series[n]; }));
      var x = xKind && kinds.indexOf(xKind) >= 0 ? xKind : (kinds[0] || "step");
      var sysCards = systemCards([run], [series], x);
      var cards = names.map(function (n) {
        var s = series[n], m = run.metrics[n] || {};
        var note = "last " + val(m.last) + " · min " + val(m.min) + " · max " + val(m.max) +
          (s.shown < s.count ? " · " + s.shown + " of " + plural(s.count, "point") + " drawn" : " · " + plural(s.count, "point")) +
          (s.nonfinite ? " · " + s.nonfinite + " non-finite" : "");
        return chartCard(n, [{label: run.name, color: COLORS[0], series: s}], x, note);
      });
      var facts = {id: run.id, experiment: run.experiment, framework: run.framework || "manual",
                   started: when(run.start_time), ended: when(run.end_time), duration: duration(run.duration)};
      if (run.owner) facts.by = run.owner;  // the token that created it, on a tracking server
      var rel = [];
      if (run.parent_id) rel.push(h("a", {href: "#/run/" + encodeURIComponent(run.parent_id), text: "parent " + short(run.parent_id)}));
      (run.children || []).forEach(function (c) { rel.push(h("a", {href: "#/run/" + encodeURIComponent(c), text: "child " + short(c)})); });
      clear(app);
      append(app, [
        header([REPORT ? null : h("a", {href: "#/", text: "runs"}), h("span", {text: run.name})]),
        h("div", {"class": "run-head"},
          h("h1", {"data-testid": "run-name", text: run.name}), statusBadge(run.status), modelBadges(run.models),
          run.status === "running" && !REPORT ? h("span", {"class": "live-note", text: "live · refreshing"}) : null,
          REPORT && REPORT.order.length > 1 ? h("a", {href: "#/", text: "← comparison"}) : null,
          deleteButton(run)),
        problemBox(run.problems),
        h("div", {"class": "facts"}, kvTable(facts, "run-facts", null, true), rel.length ? h("p", {"class": "related"}, rel) : null),
        run.error ? section("error", "error", h("pre", {"class": "traceback", "data-testid": "traceback", text: run.error})) : null,
        section("metrics", "metrics", names.length || single.length ? [
          single.length ? valuesTable(single, [run], "metric-values") : null,
          names.length ? [
            h("div", {"class": "chart-tools"}, kinds.length > 1 ? xPicker(x, kinds, function (k) { xKind = k; draw(run, series); }) : null),
            h("div", {"class": "charts", "data-testid": "charts"}, cards.map(function (c) { return c.card; }))] : null]
          : h("p", {"class": "muted", text: "no metrics recorded"})),
        run.system ? section("system", "system", systemPanel(run.system, sysCards)) : null,
        h("div", {"class": "grid2"},
          section("params", "params", kvTable(run.params, "params")),
          h("div", null, section("seeds", "seeds", kvTable(run.seeds, "seeds", "no seeds recorded")),
            section("tags", "tags", kvTable(run.tags, "tags")))),
        section("data", "data", dataTable(run.data)),
        section("artifacts", "artifacts", artifactTable(run)),
        section("environment", "environment", environment(run.environment)),
      ]);
      cards.concat(sysCards).forEach(function (c) { c.draw(); });
      document.body.setAttribute("data-ready", "run");
    }

    return load(true);
  }

  // -- compare ---------------------------------------------------------------------------------
  function viewCompare(ids, params) {
    var xKind = params.get("x") || null;
    return Promise.all([api("ui/api/compare?ids=" + ids.map(encodeURIComponent).join(","))].concat(
      ids.map(function (id) { return api("ui/api/runs/" + encodeURIComponent(id) + "/series"); })))
      .then(function (res) {
        var cmp = res[0], series = res.slice(1);
        draw(cmp, series);
      });

    function draw(cmp, series) {
      charts.forEach(function (c) { c.destroy(); });
      charts = [];
      var runs = cmp.runs;
      var single = (cmp.single_value_metrics || []).filter(function (n) { return !isSystem(n); });
      var names = Array.from(new Set([].concat.apply([], series.map(function (s) { return Object.keys(s); }))))
        .filter(function (n) { return single.indexOf(n) < 0 && !isSystem(n); }).sort();
      var all = [].concat.apply([], series.map(function (s) { return Object.keys(s).map(function (k) { return s[k]; }); }));
      var kinds = xKinds(all);
      var x = xKind && kinds.indexOf(xKind) >= 0 ? xKind : (kinds[0] || "step");
      var cards = names.map(function (n) {
        var lines = [];
        runs.forEach(function (r, i) {
          if (series[i][n]) lines.push({label: r.name + " (" + short(r.id) + ")", color: COLORS[i % COLORS.length], series: series[i][n]});
        });
        return chartCard(n, lines, x, null);
      });
      var sysCards = systemCards(runs, series, x);
      clear(app);
      append(app, [
        header([REPORT ? null : h("a", {href: "#/", text: "runs"}), h("span", {text: "compare " + plural(runs.length, "run")})]),
        h("section", {"class": "card"}, h("h2", {text: "runs"}),
          h("table", {"class": "kv", "data-testid": "compare-runs"}, h("tbody", null, runs.map(function (r, i) {
            return h("tr", null, h("td", null, h("span", {"class": "swatch", style: "background:" + COLORS[i % COLORS.length]})),
              h("th", {scope: "row"}, h("a", {href: "#/run/" + encodeURIComponent(r.id), text: r.name})),
              h("td", {"class": "mono", text: short(r.id)}), h("td", null, statusBadge(r.status)),
              h("td", {text: r.experiment}), h("td", {text: when(r.start_time)}), h("td", {text: duration(r.duration)}));
          })))),
        cmp.why ? section("why they differ", "why", whyTheyDiffer(cmp)) : null,
        section("what differs", "differences", differences(cmp)),
        section("metrics", "metrics", names.length || single.length ? [
          single.length ? valuesTable(single, runs, "compare-values") : null,
          names.length ? [
            h("div", {"class": "chart-tools"}, kinds.length > 1 ? xPicker(x, kinds, function (k) { xKind = k; draw(cmp, series); }) : null),
            h("div", {"class": "charts", "data-testid": "charts"}, cards.map(function (c) { return c.card; }))] : null]
          : h("p", {"class": "muted", text: "no metrics recorded"})),
        sysCards.length ? section("system", "system", h("div", {"class": "charts", "data-testid": "system-charts"},
          sysCards.map(function (c) { return c.card; }))) : null,
        section("params against a metric", "scatter", scatterPanel(runs)),
      ]);
      cards.concat(sysCards).forEach(function (c) { c.draw(); });
      document.body.setAttribute("data-ready", "compare");
    }
  }

  // -- models: the registry's versions, aliases, the run behind each, and what changed ----------
  // "churn v3, production": a run that produced a registered version (runs table, run page)
  function modelBadges(list) {
    if (!list || !list.length) return null;
    return h("span", {"class": "model-badges"}, list.map(function (b) {
      return h("a", {"class": "model-badge", href: REPORT ? null : "#/model/" + encodeURIComponent(b.name),
                     "data-testid": "model-badge", title: "a registered model version made from this run",
                     text: b.name + " v" + b.version + (b.aliases.length ? ", " + b.aliases.join(", ") : "")});
    }));
  }

  function aliasChips(aliases) {  // {alias: version}
    return Object.keys(aliases || {}).sort().map(function (a) {
      return h("span", {"class": "alias", "data-alias": a, text: a + " → v" + aliases[a]});
    });
  }

  function viewModels() {
    return api("ui/api/models?fresh=1").then(function (data) {
      clear(app);
      append(app, [
        header([h("span", {text: "models"})]),
        data.models.length ? h("div", {"class": "table-wrap"}, h("table", {"class": "runs models", "data-testid": "models-table"},
          h("thead", null, h("tr", null, ["model", "versions", "latest", "aliases", "latest from run", "registered"].map(function (t) {
            return h("th", {scope: "col", text: t}); }))),
          h("tbody", null, data.models.map(function (m) {
            return h("tr", {"data-model": m.name},
              h("td", {"class": "name"}, h("a", {href: "#/model/" + encodeURIComponent(m.name), "data-testid": "model-link", text: m.name})),
              h("td", {"class": "num", text: m.versions}), h("td", {text: "v" + m.latest}), h("td", null, aliasChips(m.aliases)),
              h("td", null, m.latest_run ? h("a", {"class": "mono", href: "#/run/" + encodeURIComponent(m.latest_run), text: short(m.latest_run)}) : "—"),
              h("td", {text: when(m.updated)}));
          }))))
          : h("p", {"class": "empty", text: "No registered models yet: autotrack.register_model(\"NAME\", run=...), " +
                    "autotrack model register NAME RUN, or autotrack.autolog(register_as=\"NAME\")."}),
      ]);
      document.body.setAttribute("data-ready", "models");
    });
  }

  function eventText(e) {
    if (e.action === "register") return "registered v" + e.version;
    if (e.action === "set_alias") {
      var moved = e.previous !== null && e.previous !== undefined && e.previous !== e.version;
      return e.alias + (moved ? ": v" + e.previous + " → " : " → ") + "v" + e.version;
    }
    if (e.action === "delete_alias") return e.alias + " removed" + (e.previous !== null && e.previous !== undefined ? " (was v" + e.previous + ")" : "");
    return e.action + " v" + e.version;
  }

  function viewModel(name, params) {
    return api("ui/api/models/" + encodeURIComponent(name)).then(function (m) {
      var a = params.get("a"), b = params.get("b");
      if ((!a || !b) && m.versions.length > 1) { a = String(m.versions[1].version); b = String(m.versions[0].version); }
      function picker(which, current) {
        var sel = h("select", {"aria-label": "version " + which, "data-testid": "pick-" + which, onchange: function () {
          var q = new URLSearchParams({a: which === "a" ? sel.value : a, b: which === "b" ? sel.value : b});
          go("#/model/" + encodeURIComponent(name) + "?" + q.toString());
        }}, m.versions.map(function (v) {
          return h("option", {value: String(v.version), text: "v" + v.version + (v.aliases.length ? " (" + v.aliases.join(", ") + ")" : "")});
        }));
        sel.value = current;
        return sel;
      }
      var changes = h("div", {"data-testid": "version-diff"}, a && b ? h("p", {"class": "muted", text: "comparing…"})
        : h("p", {"class": "muted", text: "one version so far: nothing to compare"}));
      clear(app);
      append(app, [
        header([h("a", {href: "#/models", text: "models"}), h("span", {text: m.name})]),
        h("div", {"class": "run-head"}, h("h1", {"data-testid": "model-name", text: m.name}), aliasChips(m.aliases)),
        section("versions", "versions", h("table", {"class": "kv versions", "data-testid": "versions"},
          h("thead", null, h("tr", null, ["version", "aliases", "run", "status", "artifact", "size", "sha256", "registered", "by"].map(function (t) {
            return h("th", {text: t}); }))),
          h("tbody", null, m.versions.map(function (v) {
            var run = v.run;
            return h("tr", {"data-version": v.version}, h("th", {scope: "row", text: "v" + v.version}),
              h("td", null, v.aliases.map(function (x) { return h("span", {"class": "alias", text: x}); })),
              h("td", null, run ? h("a", {href: "#/run/" + encodeURIComponent(run.id), "data-testid": "version-run", text: run.name + " (" + short(run.id) + ")"})
                               : h("span", {"class": "muted", title: "the run was deleted; the version's bytes are kept", text: short(v.run_id) + " (deleted)"})),
              h("td", null, run ? statusBadge(run.status) : null), h("td", {"class": "mono", text: v.artifact}),
              h("td", {"class": "num", text: bytes(v.size)}), h("td", {"class": "mono", title: v.sha256, text: String(v.sha256).slice(0, 12)}),
              h("td", {text: when(v.created)}), h("td", {text: v.by || ""}));
          })))),
        section("what changed", "changes", [m.versions.length > 1 ? h("div", {"class": "chart-tools"}, "from ", picker("a", a), " to ", picker("b", b)) : null, changes]),
        section("history", "history", h("table", {"class": "kv", "data-testid": "history"},
          h("thead", null, h("tr", null, ["#", "time", "by", "event", "run"].map(function (t) { return h("th", {text: t}); }))),
          h("tbody", null, m.history.map(function (e) {
            return h("tr", {"data-action": e.action}, h("td", {"class": "num", text: e.seq}), h("td", {text: when(e.time)}),
              h("td", {text: e.by || ""}), h("td", {text: eventText(e)}),
              h("td", null, e.run_id ? h("a", {"class": "mono", href: "#/run/" + encodeURIComponent(e.run_id), text: short(e.run_id)}) : null));
          })))),
      ]);
      if (!(a && b)) { document.body.setAttribute("data-ready", "model"); return null; }
      return api("ui/api/models/" + encodeURIComponent(name) + "/diff?" + new URLSearchParams({a: a, b: b}).toString()).then(function (d) {
        clear(changes);
        append(changes, differences({runs: d.versions.map(function (v) {
          return {name: "v" + v.version + (v.aliases.length ? " (" + v.aliases.join(", ") + ")" : "") + " · run " + v.run.name};
        }), sections: d.sections, differences: d.differences}));
        document.body.setAttribute("data-ready", "model");
      });
    });
  }

  // -- why two runs differ: `autotrack explain`'s ranked causes and where each metric parts -----
  function exact(v) { return typeof v === "number" ? String(v) : val(v); }  // every digit: runs may differ in the last bit

  function diffBlock(text, total) {
    var lines = String(text).split("\n");
    return [h("pre", {"class": "code-diff", "data-testid": "why-diff"}, lines.map(function (line) {
      var cls = /^(\+\+\+|---|diff |index |@@)/.test(line) ? "head" : line.charAt(0) === "+" ? "add" : line.charAt(0) === "-" ? "del" : null;
      return [h("span", {"class": cls, text: line}), "\n"];
    })), total > lines.length ? h("p", {"class": "small", text: "… " + (total - lines.length) + " more lines: autotrack explain A B"}) : null];
  }

  function whyTheyDiffer(cmp) {
    var why = cmp.why, runs = cmp.runs;
    if (why.error) return h("p", {"class": "error-box", "data-testid": "why-error", text: "could not tell: " + why.error});
    function runLabel(i) {
      return [h("span", {"class": "swatch", style: "background:" + COLORS[i % COLORS.length]}), " " + runs[i].name];
    }
    var causes = why.causes.length
      ? h("ol", {"class": "causes", "data-testid": "why-causes"}, why.causes.map(function (c) {
        var diff = c.uncommitted_diff || c.commits_diff;
        var total = c.uncommitted_diff ? c.uncommitted_diff_lines : c.commits_diff_lines;
        var between = c.cause === "code" && !c.commits_diff && c.summary.indexOf("code changed: commit ") === 0;
        return h("li", {"data-cause": c.cause}, h("span", {"class": "cause-kind", text: c.cause}), " ", h("span", {text: c.summary}),
          between ? h("p", {"class": "small", text: "the diff between the two commits: autotrack explain " + short(runs[0].id) + " " +
            short(runs[1].id) + " in your checkout"}) : null,
          diff ? diffBlock(diff, total) : null);
      }))
      : h("p", {"data-testid": "why-no-cause", text: "Nothing recorded differs: params, code, data, random state, packages, hardware." +
          (Object.keys(why.divergence).length ? " So the randomness or arithmetic came from outside the record: unseeded draws no " +
            "recorded generator holds, thread or GPU kernel order." : "")});
    var names = Object.keys(why.divergence).sort();
    var metrics = names.length
      ? h("table", {"class": "kv divergence", "data-testid": "why-divergence"},
        h("thead", null, h("tr", null, h("th", {text: "metric"}), h("th", {text: "first differs at"}),
          h("th", null, runLabel(0)), h("th", null, runLabel(1)))),
        h("tbody", null, names.map(function (n) {
          var d = why.divergence[n];
          if (d.missing) {
            return h("tr", {"data-metric": n}, h("th", {scope: "row", text: n}),
              h("td", {colspan: 3, "class": "muted", text: "only in " + runs[d.missing === "a" ? 1 : 0].name}));
          }
          var at = "step " + val(d.step) + (d.epoch !== null && d.epoch !== undefined ? " (epoch " + val(d.epoch) + ")" : "");
          return h("tr", {"data-metric": n}, h("th", {scope: "row", text: n}), h("td", {text: at}),
            h("td", {"class": "num mono", text: exact(d.a)}), h("td", {"class": "num mono", text: exact(d.b)}));
        })))
      : h("p", {"data-testid": "why-same", text: "Every metric point is identical, bit for bit."});
    return [h("h3", {text: why.causes.length ? "causes, most likely first" : "causes"}), causes,
            h("h3", {text: "metrics: the first point where they part"}), metrics];
  }

  function differences(cmp) {
    if (!cmp.sections.length) {
      return h("p", {"data-testid": "no-differences", text: "No difference in params, final metrics, seeds, data, git or packages."});
    }
    var runs = cmp.runs;
    return h("table", {"class": "diff-table", "data-testid": "diff-table"},
      h("thead", null, h("tr", null, h("th", {text: "section"}), h("th", {text: "key"}),
        runs.map(function (r, i) { return h("th", null, h("span", {"class": "swatch", style: "background:" + COLORS[i % COLORS.length]}), " " + r.name); }))),
      h("tbody", null, cmp.sections.map(function (sec) {
        var keys = Object.keys(cmp.differences[sec]);
        return keys.map(function (k, j) {
          return h("tr", {"data-section": sec, "data-key": k}, j === 0 ? h("th", {rowspan: keys.length, scope: "rowgroup", text: sec}) : null,
            h("td", {"class": "key", text: k}),
            cmp.differences[sec][k].map(function (v) { return h("td", {"class": v === null ? "absent" : null, text: v === null ? "—" : val(v)}); }));
        });
      })));
  }

  function scatterPanel(runs) {
    var paramKeys = Array.from(new Set([].concat.apply([], runs.map(function (r) { return Object.keys(r.params || {}); })))).sort();
    var metricKeys = Array.from(new Set([].concat.apply([], runs.map(function (r) { return Object.keys(r.metrics || {}); })))).sort();
    if (!paramKeys.length || !metricKeys.length) return h("p", {"class": "muted", text: "needs runs with params and metrics"});
    var varying = paramKeys.filter(function (k) {
      return new Set(runs.map(function (r) { return JSON.stringify(r.params[k]); })).size > 1;
    });
    var pSel = h("select", {"aria-label": "param", "data-testid": "scatter-param"}, (varying.length ? varying : paramKeys).map(function (k) { return h("option", {value: k, text: k}); }));
    var mSel = h("select", {"aria-label": "metric", "data-testid": "scatter-metric"}, metricKeys.map(function (k) { return h("option", {value: k, text: k}); }));
    var sSel = h("select", {"aria-label": "metric value"}, STATS.map(function (s) { return h("option", {value: s, text: s}); }));
    var plot = h("div", {"class": "scatter", "data-testid": "scatter"});
    function redraw() { clear(plot); plot.appendChild(scatter(runs, pSel.value, mSel.value, sSel.value)); }
    [pSel, mSel, sSel].forEach(function (s) { s.addEventListener("change", redraw); });
    redraw();
    return [h("div", {"class": "chart-tools"}, pSel, " against ", mSel, " ", sSel), plot];
  }

  function scatter(runs, pKey, mKey, stat) {
    var NS = "http://www.w3.org/2000/svg";
    function s(tag, attrs, text) {
      var el = document.createElementNS(NS, tag);
      Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
      if (text !== undefined) el.textContent = text;
      return el;
    }
    var pts = [];
    runs.forEach(function (r, i) {
      var m = (r.metrics || {})[mKey];
      var y = m ? m[stat] : null;
      if (typeof y === "number" && r.params && pKey in r.params) pts.push({run: r, i: i, x: r.params[pKey], y: y});
    });
    var numeric = pts.every(function (p) { return typeof p.x === "number"; });
    var cats = numeric ? null : Array.from(new Set(pts.map(function (p) { return val(p.x); })));
    var W = 560, H = 260, L = 60, B = 36, T = 12, R = 16;
    var xs = pts.map(function (p) { return numeric ? p.x : cats.indexOf(val(p.x)); });
    var ys = pts.map(function (p) { return p.y; });
    function range(a) {
      var lo = Math.min.apply(null, a), hi = Math.max.apply(null, a), pad = (hi - lo) * 0.08;
      if (lo === hi) pad = Math.abs(lo) * 0.1 || 1;
      return [lo - pad, hi + pad];
    }
    var svg = s("svg", {viewBox: "0 0 " + W + " " + H, width: "100%", role: "img", "aria-label": pKey + " against " + mKey});
    if (!pts.length) { svg.appendChild(s("text", {x: 20, y: 40}, "no run has both")); return svg; }
    var xr = numeric ? range(xs) : [-0.5, cats.length - 0.5], yr = range(ys);
    function px(v) { return L + (v - xr[0]) / (xr[1] - xr[0]) * (W - L - R); }
    function py(v) { return H - B - (v - yr[0]) / (yr[1] - yr[0]) * (H - B - T); }
    svg.appendChild(s("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, "class": "axis"}));
    svg.appendChild(s("line", {x1: L, y1: T, x2: L, y2: H - B, "class": "axis"}));
    [yr[0], (yr[0] + yr[1]) / 2, yr[1]].forEach(function (v) { svg.appendChild(s("text", {x: L - 6, y: py(v) + 4, "text-anchor": "end", "class": "tick"}, num(v))); });
    if (numeric) [xr[0], (xr[0] + xr[1]) / 2, xr[1]].forEach(function (v) { svg.appendChild(s("text", {x: px(v), y: H - B + 16, "text-anchor": "middle", "class": "tick"}, num(v))); });
    else cats.forEach(function (c, i) { svg.appendChild(s("text", {x: px(i), y: H - B + 16, "text-anchor": "middle", "class": "tick"}, c)); });
    svg.appendChild(s("text", {x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", "class": "label"}, pKey));
    pts.forEach(function (p, j) {
      var c = s("circle", {cx: px(xs[j]), cy: py(ys[j]), r: 6, fill: COLORS[p.i % COLORS.length], "class": "dot"});
      c.appendChild(s("title", {}, p.run.name + ": " + pKey + "=" + val(p.x) + ", " + mKey + " " + stat + "=" + num(p.y)));
      svg.appendChild(c);
    });
    return svg;
  }

  window.addEventListener("hashchange", render);
  window.addEventListener("resize", function () {
    charts.forEach(function (c) {
      var box = c.root.parentNode;
      if (box && box.clientWidth) c.setSize({width: Math.max(280, box.clientWidth - 8), height: 220});
    });
  });
  render();
})();
