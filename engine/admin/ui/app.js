// dbus live pipeline page: polls /api/v1/dag and draws the DAG as SVG plus
// a table. Plain JS, no dependencies. A token given as #token=... in the
// URL is kept for the tab's session and sent as a bearer token.
"use strict";

(function () {
  var SVGNS = "http://www.w3.org/2000/svg";
  var BOX_W = 210, BOX_H = 96, COL_GAP = 90, ROW_GAP = 24, PAD = 16;
  var api = new URL("../api/v1/", document.baseURI);

  var token = "";
  var m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    token = decodeURIComponent(m[1]);
    try { sessionStorage.setItem("dbus-token", token); } catch (e) {}
    history.replaceState(null, "", location.pathname + location.search);
  } else {
    try { token = sessionStorage.getItem("dbus-token") || ""; } catch (e) {}
  }

  function get(path) {
    // X-Dbus-Request: the admin API refuses requests without it (a page of
    // another origin cannot send it without a CORS preflight).
    var headers = { "Accept": "application/json", "X-Dbus-Request": "1" };
    if (token) headers["Authorization"] = "Bearer " + token;
    return fetch(new URL(path, api), { headers: headers, cache: "no-store" }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) {
          var msg = (body && body.error) || r.statusText;
          if (r.status === 401) msg += " — open this page as /ui/#token=YOUR_TOKEN";
          throw new Error(r.status + ": " + msg);
        }
        return body;
      });
    });
  }

  // history.js and other parts of the page share this client.
  window.dbusGet = get;

  function $(id) { return document.getElementById(id); }

  // fit keeps an SVG text inside max pixels: text that would overflow its
  // node box (large counts, long names) is condensed to fit.
  function fit(t, max) {
    try {
      if (t.getComputedTextLength() > max) {
        t.setAttribute("textLength", String(max));
        t.setAttribute("lengthAdjust", "spacingAndGlyphs");
      }
    } catch (e) {}
  }

  function num(v) {
    if (v === undefined || v === null) return "-";
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(2) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
    if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
    return v.toFixed(1);
  }

  function dur(s) {
    if (s === undefined || s === null) return "-";
    if (s < 1) return Math.round(s * 1000) + "ms";
    if (s < 120) return s.toFixed(1) + "s";
    if (s < 7200) return Math.round(s / 60) + "m";
    return (s / 3600).toFixed(1) + "h";
  }

  function el(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // layout puts each node in its column; within a column, nodes are
  // ordered by the mean row of their upstream nodes to limit crossings.
  function layout(nodes, edges) {
    var cols = {}, pos = {}, row = {}, ups = {}, maxRows = 0, maxCol = 0;
    nodes.forEach(function (n) {
      var c = n.column || 0;
      (cols[c] = cols[c] || []).push(n);
      if (c > maxCol) maxCol = c;
    });
    edges.forEach(function (e) { (ups[e.to] = ups[e.to] || []).push(e.from); });
    for (var c = 0; c <= maxCol; c++) {
      if (!cols[c]) continue;
      var key = {};
      cols[c].forEach(function (n, i) {
        var u = (ups[n.name] || []).filter(function (x) { return x in row; });
        key[n.name] = u.length ? u.reduce(function (a, x) { return a + row[x]; }, 0) / u.length : i;
      });
      cols[c].sort(function (a, b) { return key[a.name] - key[b.name] || (a.name < b.name ? -1 : 1); });
      cols[c].forEach(function (n, i) { row[n.name] = i; });
    }
    Object.keys(cols).forEach(function (c) {
      cols[c].forEach(function (n, i) {
        pos[n.name] = { x: PAD + c * (BOX_W + COL_GAP), y: PAD + i * (BOX_H + ROW_GAP) };
      });
      if (cols[c].length > maxRows) maxRows = cols[c].length;
    });
    return {
      pos: pos,
      width: PAD * 2 + (maxCol + 1) * BOX_W + maxCol * COL_GAP,
      height: PAD * 2 + maxRows * BOX_H + Math.max(0, maxRows - 1) * ROW_GAP
    };
  }

  function drawDAG(d) {
    var svg = $("dag");
    var L = layout(d.nodes, d.edges);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.setAttribute("viewBox", "0 0 " + L.width + " " + L.height);
    svg.setAttribute("height", String(L.height));
    var defs = el("defs", {});
    var marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto" });
    marker.appendChild(el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8d99ab" }));
    defs.appendChild(marker);
    svg.appendChild(defs);
    d.edges.forEach(function (e) {
      var a = L.pos[e.from], b = L.pos[e.to];
      if (!a || !b) return;
      var x1 = a.x + BOX_W, y1 = a.y + BOX_H / 2, x2 = b.x, y2 = b.y + BOX_H / 2, mx = (x1 + x2) / 2;
      svg.appendChild(el("path", {
        "class": "edge " + e.kind, "marker-end": "url(#arrow)",
        d: "M" + x1 + "," + y1 + " C" + mx + "," + y1 + " " + mx + "," + y2 + " " + x2 + "," + y2
      }));
    });
    d.nodes.forEach(function (n) {
      var p = L.pos[n.name];
      var trouble = n.held > 0 || n.failed > 0 || n.panics > 0;
      var g = el("g", {
        "class": "node " + n.kind + (n.paused ? " paused" : "") + (trouble ? " trouble" : ""),
        transform: "translate(" + p.x + "," + p.y + ")",
        "data-name": n.name, "data-in": String(n.in), "data-out": String(n.out)
      });
      g.appendChild(el("title", {}, n.name + " (" + n.class + ")"));
      g.appendChild(el("rect", { "class": "box", width: BOX_W, height: BOX_H, rx: 6 }));
      g.appendChild(el("text", { "class": "name", x: 10, y: 18 }, n.name + (n.paused ? " (paused)" : "")));
      g.appendChild(el("text", { "class": "dim", x: 10, y: 34 }, n.kind + " · " + n.class));
      g.appendChild(el("text", { "class": "rate", x: 10, y: 52 }, num(n.out_rate) + "/s out · " + num(n.out) + " total"));
      var line = "drops " + num(n.drop_total);
      if (n.kind === "input") line += " · in flight " + num(n.in_flight) + " · ckpt " + dur(n.checkpoint_age_seconds);
      if (n.kind === "output") line += " · held " + num(n.held) + " · retries " + num(n.retries);
      g.appendChild(el("text", { "class": "dim", x: 10, y: 68 }, line));
      if (n.queue_cap > 0) {
        var fill = Math.min(1, n.queue_len / n.queue_cap);
        g.appendChild(el("rect", { "class": "qbg", x: 10, y: 78, width: BOX_W - 90, height: 8, rx: 2 }));
        g.appendChild(el("rect", { "class": "qfill", x: 10, y: 78, width: Math.max(0, (BOX_W - 90) * fill), height: 8, rx: 2 }));
        g.appendChild(el("text", { "class": "dim", x: BOX_W - 74, y: 86 }, "q " + num(n.queue_len) + "/" + num(n.queue_cap)));
      }
      svg.appendChild(g);
      Array.prototype.forEach.call(g.querySelectorAll("text"), function (t) {
        fit(t, BOX_W - (+t.getAttribute("x")) - 6);
      });
    });
  }

  function cell(tr, text, cls, field, name) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    if (field) { td.setAttribute("data-field", field); td.setAttribute("data-node", name); }
    tr.appendChild(td);
  }

  function drawTable(d) {
    var tb = $("nodes").tBodies[0];
    while (tb.firstChild) tb.removeChild(tb.firstChild);
    d.nodes.forEach(function (n) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-node", n.name);
      cell(tr, n.name, "", "name", n.name);
      cell(tr, n.kind);
      cell(tr, n.class);
      cell(tr, num(n.in_rate), "num", "in_rate", n.name);
      cell(tr, num(n.out_rate), "num", "out_rate", n.name);
      cell(tr, String(n.in), "num", "in", n.name);
      cell(tr, String(n.out), "num", "out", n.name);
      cell(tr, n.queue_cap > 0 ? n.queue_len + "/" + n.queue_cap : "-", "num", "queue", n.name);
      cell(tr, String(n.drop_total), "num", "drops", n.name);
      cell(tr, String(n.failed), "num", "failed", n.name);
      cell(tr, String(n.retries), "num", "retries", n.name);
      cell(tr, String(n.held), "num", "held", n.name);
      cell(tr, n.kind === "input" ? String(n.in_flight) : "-", "num", "in_flight", n.name);
      cell(tr, n.kind === "input" ? String(n.checkpoint_offset) : "-", "num", "checkpoint", n.name);
      cell(tr, n.kind === "input" ? dur(n.checkpoint_age_seconds) : "-", "num", "checkpoint_age", n.name);
      cell(tr, n.paused ? "paused" : "running", "", "state", n.name);
      tb.appendChild(tr);
    });
  }

  function showError(msg) {
    var e = $("error");
    e.textContent = msg || "";
    e.hidden = !msg;
  }

  // showCluster fills the header line of a cluster member (status.cluster:
  // member, leader, epoch, session, its resources; their nodes are in the
  // graph as <resource>/<plugin>).
  var isMember = false;
  function showCluster(c) {
    var el = $("cluster");
    if (!c) { el.hidden = true; return; }
    isMember = true;
    var rs = c.resources || [], running = 0, failed = [];
    rs.forEach(function (r) {
      if (r.state === "running") running++;
      if (r.state === "failed") failed.push(r.id + ": " + (r.error || "failed"));
    });
    el.hidden = false;
    el.textContent = "member " + c.member + " of " + c.cluster +
      (c.is_leader ? " (leader)" : ", leader " + (c.leader || "-")) +
      " · epoch " + c.epoch + " · session " + c.session +
      " · resources " + running + "/" + rs.length + " running" + (failed.length ? ", " + failed.length + " failed" : "");
    el.title = failed.join("\n");
  }

  var statusEvery = 0;
  function tick() {
    var dag = get("dag").then(function (d) {
      drawDAG(d);
      drawTable(d);
      $("generation").textContent = String(d.generation);
      $("uptime").textContent = dur(d.uptime_seconds);
      var inflight = 0;
      d.nodes.forEach(function (n) { if (n.kind === "input") inflight += n.in_flight; });
      $("inflight").textContent = num(inflight);
      $("updated").textContent = new Date().toLocaleTimeString();
      showError("");
    });
    var st = (statusEvery++ % (isMember ? 2 : 10) === 0) ? get("status").then(function (s) {
      $("version").textContent = "version " + s.version;
      showCluster(s.cluster);
    }) : Promise.resolve();
    return Promise.all([dag, st]).catch(function (err) { showError("cannot load pipeline state: " + err.message); });
  }

  function loop() {
    tick().then(function () { setTimeout(loop, 1000); });
  }
  loop();
})();
