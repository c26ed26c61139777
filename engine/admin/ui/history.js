// dbus live page, history: charts of the last minutes per node from
// /api/v1/history (an in-process ring of samples, no external database)
// and the reload log from /api/v1/reloads (applied and rejected, with the
// error and file:line). Plain JS and SVG, no dependencies; uses app.js's
// window.dbusGet (same headers and token).
"use strict";

(function () {
  var SVGNS = "http://www.w3.org/2000/svg";
  var W = 220, H = 56;
  var minutes = 15;
  var CHARTS = [
    { key: "rate", title: "packets/s in / out", series: ["in", "out"], fmt: "num" },
    { key: "drops", title: "drops, retries, held /s", series: ["drops", "retries", "held"], fmt: "num" },
    { key: "queue", title: "queue fill", series: ["queue_fill"], fmt: "pct" },
    { key: "ckpt", title: "checkpoint age s", series: ["ckpt_age"], fmt: "num" },
    { key: "ack", title: "ack latency p50 / p99 s", series: ["ack_p50", "ack_p99"], fmt: "sec" },
    { key: "lag", title: "input lag s", series: ["lag"], fmt: "num" }
  ];
  var COLORS = ["#2563eb", "#16a34a", "#dc2626"];

  function $(id) { return document.getElementById(id); }

  function fmt(v, kind) {
    if (v === undefined || v === null || isNaN(v)) return "-";
    if (kind === "pct") return Math.round(v * 100) + "%";
    if (kind === "sec") return v < 1 ? Math.round(v * 1000) + "ms" : v.toFixed(2) + "s";
    var a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
    return a >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(1);
  }

  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  // chart draws one small line chart; every value of every series shares
  // the vertical scale, time runs left to right over the window.
  function chart(ser, spec, t0, t1) {
    var box = document.createElement("div");
    box.className = "chart";
    var max = 0, last = [];
    spec.series.forEach(function (name) {
      var col = ser[name] || [];
      col.forEach(function (v) { if (v > max) max = v; });
      last.push(col.length ? col[col.length - 1] : null);
    });
    var title = document.createElement("div");
    title.className = "chart-title";
    title.textContent = spec.title + ": " + last.map(function (v) { return fmt(v, spec.fmt); }).join(" / ");
    title.setAttribute("data-chart", spec.key);
    box.appendChild(title);
    var s = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img" });
    s.appendChild(svg("rect", { x: 0, y: 0, width: W, height: H, "class": "chart-bg" }));
    var span = Math.max(1, t1 - t0), top = max > 0 ? max * 1.1 : 1;
    spec.series.forEach(function (name, i) {
      var col = ser[name] || [];
      var pts = [];
      for (var k = 0; k < col.length; k++) {
        var x = (ser.t[k] - t0) / span * W, y = H - (col[k] / top) * (H - 4) - 2;
        pts.push(x.toFixed(1) + "," + y.toFixed(1));
      }
      if (pts.length) s.appendChild(svg("polyline", { points: pts.join(" "), fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.5 }));
    });
    box.appendChild(s);
    return box;
  }

  function drawHistory(v) {
    var root = $("history-charts");
    if (!root) return;
    var names = Object.keys(v.nodes || {}).sort();
    // The time axis spans the window, or only the samples there are when
    // the history is younger than the window (a fresh start).
    var t1 = Date.now(), t0 = t1 - minutes * 60000, oldest = t1;
    names.forEach(function (name) { var t = v.nodes[name].t; if (t.length && t[0] < oldest) oldest = t[0]; });
    if (oldest > t0) t0 = oldest;
    var frag = document.createDocumentFragment();
    names.forEach(function (name) {
      var ser = v.nodes[name];
      var row = document.createElement("div");
      row.className = "history-node";
      row.setAttribute("data-node", name);
      var h = document.createElement("h3");
      h.textContent = name + " (" + ser.t.length + " samples)";
      row.appendChild(h);
      CHARTS.forEach(function (spec) { row.appendChild(chart(ser, spec, t0, t1)); });
      frag.appendChild(row);
    });
    root.replaceChildren(frag);
  }

  function drawReloads(list) {
    var tb = $("reloads") && $("reloads").querySelector("tbody");
    if (!tb) return;
    var frag = document.createDocumentFragment();
    (list || []).slice().reverse().forEach(function (r) {
      var tr = document.createElement("tr");
      tr.className = r.applied ? "reload-ok" : "reload-rejected";
      [r.at ? new Date(r.at).toLocaleTimeString() : "-", r.source || "-", r.previous_generation + " → " + r.generation,
       r.applied ? "applied" : "rejected", r.error || (r.warnings || []).join("; ")].forEach(function (text, i) {
        var td = document.createElement("td");
        td.textContent = text;
        if (i === 4) td.className = "reload-msg";
        tr.appendChild(td);
      });
      frag.appendChild(tr);
    });
    tb.replaceChildren(frag);
  }

  function tick() {
    if (!window.dbusGet) return;
    window.dbusGet("history?minutes=" + minutes).then(drawHistory).catch(function () {});
    window.dbusGet("reloads").then(function (b) { drawReloads(b.reloads); }).catch(function () {});
  }

  var sel = $("history-window");
  if (sel) sel.addEventListener("change", function () { minutes = +sel.value || 15; tick(); });
  tick();
  setInterval(tick, 2000);
})();
