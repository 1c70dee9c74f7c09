// The page script: fetch the page's data, draw KPIs, charts (plotly.js) and tables, follow the
// lake live, run the governance actions. Data from the lake is only ever set as textContent or
// as entity-escaped plotly text: never parsed as HTML.
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const refreshMs = Number(body.dataset.refreshMs) || 5000;
  const params = new URLSearchParams(location.search);
  const FILTERS = ["start", "end", "version", "spec", "feature", "run_id"];
  const COLORS = { ok: "#2e7d32", info: "#1565c0", warning: "#ef6c00", critical: "#c62828" };
  // Series named after a severity or an outcome keep its colour on every chart.
  const NAMED_COLORS = {
    normal: "#66bb6a", ok: "#66bb6a", warning: "#ffb300", moderate: "#ef6c00", critical: "#c62828",
    info: "#1e88e5", delivered: "#66bb6a", failed: "#c62828",
  };
  const PAGE_ROWS = 100;
  // Past this many x values, bars over time are drawn as lines (stacked ones as stacked areas):
  // a year of daily bars is thousands of SVG paths, one line per series reads the same.
  const MAX_BARS = 90;
  const SYMBOLS = ["circle-open", "x", "diamond", "square", "star", "triangle-up", "cross"];
  const MARKER_COLORS = {
    promoted: "#2e7d32", manual_promote: "#2e7d32", rollback: "#c62828", shadowed: "#6a1b9a",
  };
  const TRAFFIC_PAGES = ["inference", "labels"];
  let lastToken = null;
  let busy = false;

  function filterQuery() {
    const q = new URLSearchParams();
    for (const key of FILTERS) {
      const value = params.get(key);
      if (value) q.set(key, value);
    }
    if (page === "lookup" && params.get("id")) q.set("id", params.get("id"));
    return q;
  }

  function dataUrl() {
    if (page === "lookup") return params.get("id") ? "/api/lookup?" + filterQuery() : null;
    return "/api/page/" + encodeURIComponent(page) + "?" + filterQuery();
  }

  function csvUrl(key) {
    const base = page === "lookup" ? "/api/lookup" : "/api/page/" + encodeURIComponent(page);
    return base + "/table/" + encodeURIComponent(key) + ".csv?" + filterQuery();
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // plotly.js reads a few HTML tags in its text: entities keep lake strings literal.
  function esc(value) {
    return String(value === null || value === undefined ? "" : value)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function detailText(data) {
    if (!data || data.detail === undefined) return "";
    if (typeof data.detail === "string") return data.detail;
    if (Array.isArray(data.detail)) return data.detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
    return JSON.stringify(data.detail);
  }

  async function request(url, options) {
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options || {}));
    if (response.status === 401) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      throw new Error("signed out");
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(detailText(data) || response.status + " " + response.statusText);
    return data;
  }

  function showError(message) {
    const box = document.getElementById("error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function fillOptions(options) {
    for (const select of document.querySelectorAll("select[data-options]")) {
      const values = options[select.dataset.options];
      if (!values) continue;
      const wanted = select.dataset.value !== undefined ? select.dataset.value : select.value;
      const keep = select.dataset.value !== undefined ? select.options[0] : null;
      select.replaceChildren();
      if (keep) select.appendChild(keep);
      for (const value of values) {
        const option = el("option", "", select.name === "version" ? "v" + value : value);
        option.value = value;
        select.appendChild(option);
      }
      if (wanted && values.includes(wanted)) select.value = wanted;
    }
  }

  function renderKpis(kpis) {
    const box = document.getElementById("kpis");
    box.replaceChildren();
    for (const kpi of kpis) {
      const card = el("div", "kpi sev-" + kpi.severity);
      card.dataset.kpi = kpi.key;
      card.appendChild(el("span", "label", kpi.label));
      let value = kpi.value === null ? "–" : kpi.value;
      if (typeof value === "number" && !Number.isInteger(value)) value = value.toFixed(4).replace(/0+$/, "");
      card.appendChild(el("span", "value", String(value) + (kpi.unit && kpi.value !== null ? " " + kpi.unit : "")));
      if (kpi.hint) card.appendChild(el("span", "hint", kpi.hint));
      box.appendChild(card);
    }
  }

  function traces(chart) {
    return chart.series.map((s, i) => {
      const x = (s.x || chart.x).map((v) => (typeof v === "string" ? esc(v) : v));
      const trace = { name: esc(s.name), x: x, y: s.y };
      const color = NAMED_COLORS[String(s.name).toLowerCase()];
      if (color) trace.marker = { color: color };
      const many = chart.kind !== "histogram" && x.length > MAX_BARS;
      if (many && chart.kind === "stacked_bar") {
        Object.assign(trace, { type: "scatter", mode: "lines", stackgroup: "bars", line: { width: 0.5 } });
        if (color) trace.fillcolor = color;
      } else if (many && chart.kind === "bar") {
        Object.assign(trace, { type: "scatter", mode: "lines" });
      } else if (chart.kind === "bar" || chart.kind === "stacked_bar" || chart.kind === "histogram") {
        trace.type = "bar";
      } else if (chart.kind === "scatter") {
        Object.assign(trace, {
          type: "scatter", mode: "markers",
          marker: { size: 12 + 2 * i, symbol: SYMBOLS[i % SYMBOLS.length], line: { width: 2 } },
        });
      } else {
        const mode = x.length > MAX_BARS ? "lines" : "lines+markers";
        Object.assign(trace, { type: "scatter", mode: mode, connectgaps: false });
        if (chart.kind === "step") trace.line = { shape: "hv" };
      }
      return trace;
    });
  }

  function dataMax(chart) {
    let max = 0;
    for (const s of chart.series) for (const v of s.y) if (typeof v === "number" && v > max) max = v;
    return max;
  }

  function layout(chart) {
    const shapes = [];
    const annotations = [];
    for (const m of chart.markers) {
      const color = MARKER_COLORS[m.kind] || "#555";
      shapes.push({
        type: "line", xref: "x", yref: "paper", x0: m.at, x1: m.at, y0: 0, y1: 1,
        line: { color: color, width: 1.5, dash: "dot" },
      });
      annotations.push({
        x: m.at, xref: "x", y: 1, yref: "paper", text: esc(m.label), showarrow: false,
        textangle: -90, xanchor: "right", yanchor: "top", font: { size: 10, color: color },
      });
    }
    if (chart.bands.length) {
      // Bands up to just above the data: a 0-1 PSI band must not flatten PSIs of 0.02.
      const top = Math.max(dataMax(chart) * 1.15, chart.bands[0].high * 1.2);
      for (const b of chart.bands) {
        if (b.low >= top) continue;
        shapes.push({
          type: "rect", xref: "paper", x0: 0, x1: 1, yref: "y", y0: b.low, y1: Math.min(b.high, top),
          fillcolor: COLORS[b.severity] || "#999", opacity: 0.1, line: { width: 0 }, layer: "below",
        });
      }
    }
    const bars = ["bar", "stacked_bar", "histogram"].includes(chart.kind);
    const categorical = chart.x.length > 8 && chart.x.every((v) => typeof v === "string" && !/^\d{4}-\d\d-\d\d/.test(v));
    return {
      height: categorical ? 380 : 300, margin: { l: 55, r: 15, t: 30, b: 40 },
      barmode: chart.kind === "stacked_bar" ? "stack" : "group",
      bargap: chart.kind === "histogram" ? 0 : 0.2,
      xaxis: { title: { text: esc(chart.x_title) }, automargin: categorical },
      yaxis: { title: { text: esc(chart.y_title) }, rangemode: bars ? "tozero" : "normal" },
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" }, shapes: shapes, annotations: annotations,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff",
    };
  }

  function renderCharts(charts) {
    const box = document.getElementById("charts");
    const drawn = [];
    const keys = new Set(charts.map((c) => c.key));
    for (const old of box.querySelectorAll(".chart")) if (!keys.has(old.dataset.chart)) old.remove();
    for (const chart of charts) {
      let card = box.querySelector('.chart[data-chart="' + CSS.escape(chart.key) + '"]');
      if (!card) {
        card = el("figure", "chart");
        card.dataset.chart = chart.key;
        card.appendChild(el("figcaption", ""));
        card.appendChild(el("div", "plot"));
        box.appendChild(card);
      }
      card.querySelector("figcaption").textContent = chart.title;
      const plot = card.querySelector(".plot");
      card.dataset.hasData = chart.has_data ? "1" : "0";
      if (!chart.has_data) {
        if (plot.data) window.Plotly.purge(plot);
        plot.replaceChildren(el("p", "empty", "no data in this window"));
        card.dataset.drawn = "1";
        continue;
      }
      if (!plot.data) plot.replaceChildren();
      card.dataset.drawn = "0";
      drawn.push(
        window.Plotly.react(plot, traces(chart), layout(chart), { displaylogo: false, responsive: true })
          .then(() => { card.dataset.drawn = "1"; card.dataset.points = String(plot.querySelectorAll(".point, .bars path").length); })
      );
    }
    return Promise.all(drawn);
  }

  function href(template, value) {
    if (value === null || value === undefined || value === "") return null;
    if (template === "{value}") {
      const text = String(value);
      return /^(\/(?!\/)|https?:\/\/)/.test(text) ? text : null;
    }
    return template.split("{value}").join(encodeURIComponent(String(value)));
  }

  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }

  function cellText(value) {
    if (value === null || value === undefined) return "";
    // ISO times shown short; the CSV and the JSON keep them whole.
    if (typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/.test(value)) {
      return value.slice(0, 16).replace("T", " ");
    }
    if (typeof value === "number" && !Number.isInteger(value)) return String(Number(value.toPrecision(6)));
    return String(value);
  }

  function renderTable(table) {
    const card = el("section", "table-card");
    card.dataset.table = table.key;
    const head = el("div", "table-head");
    head.appendChild(el("h2", "", table.title));
    head.appendChild(el("span", "count", table.rows.length.toLocaleString("en") + " rows"));
    const csv = el("a", "csv", "CSV");
    csv.href = csvUrl(table.key);
    csv.setAttribute("download", page + "-" + table.key + ".csv");
    csv.dataset.csv = table.key;
    head.appendChild(csv);
    card.appendChild(head);
    const wrap = el("div", "table-wrap");
    const grid = el("table", "grid");
    const thead = el("thead");
    const headRow = el("tr");
    const ackColumn = page === "alerts" && table.key === "feed" ? table.columns.indexOf("alert_id") : -1;
    const ackedColumn = table.columns.indexOf("acknowledged_at");
    let rows = table.rows.slice();
    let sortBy = -1;
    let ascending = true;
    const tbody = el("tbody");
    // A page of rows at a time: a year's daily table is thousands of rows, and every row drawn
    // is DOM the browser must lay out before the page answers. The CSV holds them all.
    let offset = 0;
    const pager = el("div", "pager");
    const prev = el("button", "prev", "‹ previous");
    const next = el("button", "next", "next ›");
    const where = el("span", "where", "");
    prev.type = next.type = "button";
    prev.addEventListener("click", () => { offset = Math.max(0, offset - PAGE_ROWS); fill(); });
    next.addEventListener("click", () => { offset += PAGE_ROWS; fill(); });
    pager.append(prev, where, next);
    function fill() {
      tbody.replaceChildren();
      const end = Math.min(rows.length, offset + PAGE_ROWS);
      card.dataset.offset = String(offset);
      where.textContent = (rows.length ? offset + 1 : 0) + "–" + end + " of " + rows.length;
      prev.disabled = offset === 0;
      next.disabled = end >= rows.length;
      pager.hidden = rows.length <= PAGE_ROWS;
      for (const row of rows.slice(offset, end)) {
        const tr = el("tr");
        if (ackColumn >= 0) {
          const td = el("td");
          if (ackedColumn >= 0 && row[ackedColumn]) {
            td.textContent = "acknowledged";
          } else {
            const button = el("button", "ack", "Acknowledge…");
            button.type = "button";
            button.addEventListener("click", () => acknowledge(String(row[ackColumn])));
            td.appendChild(button);
          }
          tr.appendChild(td);
        }
        row.forEach((value, i) => {
          const td = el("td");
          const link = table.links[table.columns[i]];
          const target = link ? href(link, value) : null;
          if (target) {
            const a = el("a", "", cellText(value));
            a.href = target;
            td.appendChild(a);
          } else {
            td.textContent = cellText(value);
          }
          if (typeof value === "number") td.className = "num";
          else if (typeof value === "string" && value.length > 60) td.className = "long";
          tr.appendChild(td);
        });
        tbody.appendChild(tr);
      }
    }
    if (ackColumn >= 0) headRow.appendChild(el("th", "", ""));
    table.columns.forEach((name, i) => {
      const th = el("th", "", name);
      th.title = "sort by " + name;
      th.addEventListener("click", () => {
        ascending = sortBy === i ? !ascending : true;
        sortBy = i;
        rows = table.rows.slice().sort((a, b) => (ascending ? 1 : -1) * compare(a[i], b[i]));
        offset = 0;
        for (const other of headRow.children) other.removeAttribute("aria-sort");
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        fill();
      });
      headRow.appendChild(th);
    });
    thead.appendChild(headRow);
    grid.appendChild(thead);
    grid.appendChild(tbody);
    fill();
    wrap.appendChild(grid);
    card.appendChild(wrap);
    card.appendChild(pager);
    return card;
  }

  function renderTables(tables) {
    document.getElementById("tables").replaceChildren(...tables.map(renderTable));
  }

  function renderNotes(notes) {
    document.getElementById("notes").replaceChildren(...notes.map((n) => el("li", "", n)));
  }

  // Deferred scripts run in order before DOMContentLoaded: plotly.js (after this one) is there
  // by then.
  // plotly.js is preloaded by the page and run once, asked for when the data is.
  let plotly = null;
  function plotlyReady() {
    if (!plotly) {
      plotly = new Promise((resolve, reject) => {
        if (window.Plotly) return resolve();
        const script = document.createElement("script");
        script.src = "/vendor/plotly.min.js";
        script.onload = () => resolve();
        script.onerror = () => reject(new Error("plotly.js did not load"));
        document.head.appendChild(script);
      });
    }
    return plotly;
  }

  async function load() {
    if (busy) return;
    busy = true;
    body.dataset.ready = "0";
    try {
      const url = dataUrl();
      const charting = plotlyReady(); // fetched and started while the data is on its way
      const data = url ? await request(url) : { title: document.title, kpis: [], charts: [], tables: [],
        notes: ["enter an inference id or a transaction id"], options: {} };
      showError("");
      if (url) document.getElementById("title").textContent = data.title;
      renderNotes(data.notes);
      fillOptions(data.options);
      renderKpis(data.kpis);
      renderTables(data.tables);
      // Figures, filters and tables are there: the page answers before plotly.js is running.
      if (!body.dataset.shownMs) body.dataset.shownMs = String(Math.round(performance.now()));
      await charting;
      await renderCharts(data.charts);
    } catch (error) {
      showError(error.message);
    } finally {
      busy = false;
      // When the page first answered, from navigation start (bench/dashboard reads it).
      if (!body.dataset.readyMs) body.dataset.readyMs = String(Math.round(performance.now()));
      body.dataset.ready = "1";
    }
  }

  async function poll() {
    try {
      const q = new URLSearchParams();
      if (params.get("spec")) q.set("spec", params.get("spec"));
      const state = await request("/api/state?" + q);
      // predictions move with every logged batch: only the traffic pages follow them.
      const token = [state.champion].concat(Object.keys(state.snapshots).sort()
        .filter((t) => t !== "predictions" || TRAFFIC_PAGES.includes(page))
        .map((t) => t + ":" + state.snapshots[t])).join("|");
      if (lastToken !== null && token !== lastToken) await load();
      lastToken = token;
    } catch (error) {
      /* the next poll tries again; a failed data request shows its own error */
    }
  }

  function confirmAction(title, text) {
    const dialog = document.getElementById("confirm");
    const reason = document.getElementById("confirm-reason");
    document.getElementById("confirm-title").textContent = title;
    document.getElementById("confirm-text").textContent = text;
    reason.value = "";
    return new Promise((resolve) => {
      const form = document.getElementById("confirm-form");
      const cancel = document.getElementById("confirm-cancel");
      function done(value) {
        form.removeEventListener("submit", onSubmit);
        cancel.removeEventListener("click", onCancel);
        dialog.close();
        resolve(value);
      }
      function onSubmit(event) {
        event.preventDefault();
        if (reason.value.trim()) done(reason.value.trim());
      }
      function onCancel() { done(null); }
      form.addEventListener("submit", onSubmit);
      cancel.addEventListener("click", onCancel);
      dialog.showModal();
      reason.focus();
    });
  }

  async function act(action, payload, title, text) {
    const reason = await confirmAction(title, text);
    if (reason === null) return;
    const status = document.getElementById("action-result");
    try {
      const spec = params.get("spec");
      const result = await request("/api/actions/" + action, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(Object.assign({ reason: reason }, spec ? { spec: spec } : {}, payload)),
      });
      if (status) status.textContent = action + ": done (" + (result.event_type || "recorded") + ")";
      showError("");
      await load();
      return result;
    } catch (error) {
      if (status) status.textContent = "";
      showError(action + " refused: " + error.message);
    }
  }

  function acknowledge(alertId) {
    return act("ack", { alert_id: alertId }, "Acknowledge alert", "Acknowledge alert " + alertId + "?");
  }

  function wireActions() {
    const promote = document.getElementById("promote");
    if (promote) {
      promote.addEventListener("click", () => {
        const version = document.getElementById("promote-version").value;
        if (!version) return showError("no other version to promote");
        act("promote", { version: version }, "Promote", "Make v" + version + " the champion?");
      });
    }
    const rollback = document.getElementById("rollback");
    if (rollback) {
      rollback.addEventListener("click", () =>
        act("rollback", {}, "Roll back", "Put the previous champion back?"));
    }
    // A filter change applies at once (the form's GET keeps the filters in the URL).
    for (const input of document.querySelectorAll("#filters select, #filters input[type=date]")) {
      input.addEventListener("change", () => document.getElementById("filters").submit());
    }
  }

  load().then(poll);
  document.addEventListener("DOMContentLoaded", wireActions);
  setInterval(poll, refreshMs);
})();
