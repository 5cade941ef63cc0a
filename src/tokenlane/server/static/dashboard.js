// tokenlane dashboard: polls /dashboard/data and draws it. Every number in the tables is the
// feed's own (stats = what /v1/router/stats serves), rounded for display; nothing is computed
// here but formatting and the time axis. Text from the feed goes in as textContent only.
"use strict";

(function () {
  const POLL_MS = 1000;
  const DECISIONS_SHOWN = 20;
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2",
                  "#db2777", "#4b5563"];
  const DASH = "—";
  const charts = new Map();  // model -> {tps, ttft}
  let built = false;

  const fmt = {
    tps: (v) => v == null ? DASH : String(Math.round(v)),
    ms: (v) => v == null ? DASH : Math.round(v * 1000) + " ms",
    pct: (v) => v == null ? DASH : (v * 100).toFixed(1) + "%",
    usd: (v) => v == null ? DASH : "$" + v.toFixed(6),
    usdM: (v) => v == null ? DASH : "$" + v.toFixed(3),
    int: (v) => v == null ? DASH : String(v),
    age: (s) => s == null ? DASH : s < 60 ? Math.round(s) + " s" : Math.round(s / 60) + " min",
  };

  // [heading, field, value of (estimate row, traffic totals, share)]
  const COLUMNS = [
    ["deployment", "deployment", (e) => e.deployment],
    ["circuit", "circuit", (e) => e.circuit],
    ["decode tok/s", "decode_tps", (e) => fmt.tps(e.decode_tps_p50)],
    ["TTFT p50", "ttft_p50", (e) => fmt.ms(e.ttft_p50_s)],
    ["TTFT p90", "ttft_p90", (e) => fmt.ms(e.ttft_p90_s)],
    ["errors", "error_rate", (e) => fmt.pct(e.error_rate)],
    ["429s", "rate_limit_rate", (e) => fmt.pct(e.rate_limit_rate)],
    ["share (15 min)", "share", (e, t, s) => fmt.pct(s)],
    ["$ / request", "usd_per_request", (e, t) => fmt.usd(t.usd_per_request)],
    ["$ / 1M tokens", "usd_per_m_tokens", (e, t) => fmt.usdM(t.usd_per_m_tokens)],
    ["$ in / out per 1M", "price", (e) => "$" + e.price_input + " / $" + e.price_output],
    ["attempts (15 min)", "attempts", (e, t) => fmt.int(t.attempts)],
    ["samples", "samples", (e) => fmt.int(e.samples)],
    ["last seen", "age", (e) => e.age_s == null ? "never" : fmt.age(e.age_s) + " ago"],
  ];

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  }

  function chartWidth(box) {
    return Math.max(280, Math.floor(box.getBoundingClientRect().width) - 8);
  }

  function makeChart(box, title, unit, deployments, withP90) {
    const series = [{}];
    deployments.forEach((d, i) => {
      const color = COLORS[i % COLORS.length];
      series.push({label: withP90 ? d + " p50" : d, stroke: color, width: 2, spanGaps: false,
                   points: {show: true, size: 4}});
      if (withP90) series.push({label: d + " p90", stroke: color, width: 1, dash: [6, 4],
                                points: {show: false}});
    });
    const opts = {
      title: title, width: chartWidth(box), height: 220, series: series,
      scales: {x: {time: true}, y: {range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1]}},
      axes: [{}, {label: unit, size: 60}],
      legend: {live: false},
    };
    const empty = [[]].concat(series.slice(1).map(() => []));
    return new uPlot(opts, empty, box);
  }

  function build(feed) {
    const root = document.getElementById("models");
    root.replaceChildren();
    for (const [model, route] of Object.entries(feed.stats.models)) {
      const ids = route.deployments.map((d) => d.deployment);
      const section = el("section", {"class": "model", "data-model": model});
      const head = el("h2", {}, model);
      head.appendChild(el("span", {"class": "policy"}, "policy: " + route.policy));
      section.appendChild(head);
      const table = el("table", {"class": "deployments"});
      const tr = el("tr");
      COLUMNS.forEach(([h]) => tr.appendChild(el("th", {}, h)));
      table.appendChild(el("thead")).appendChild(tr);
      const body = table.appendChild(el("tbody"));
      ids.forEach((d, i) => {
        const row = el("tr", {"data-deployment": d});
        COLUMNS.forEach(([, field]) => row.appendChild(el("td", {"data-field": field})));
        row.firstChild.style.borderLeft = "4px solid " + COLORS[i % COLORS.length];
        body.appendChild(row);
      });
      section.appendChild(table);
      const plots = el("div", {"class": "charts"});
      const tpsBox = plots.appendChild(el("div", {"class": "chart", "data-chart": "decode_tps"}));
      const ttftBox = plots.appendChild(el("div", {"class": "chart", "data-chart": "ttft"}));
      section.appendChild(plots);
      root.appendChild(section);
      charts.set(model, {
        ids: ids, boxes: [tpsBox, ttftBox],
        tps: makeChart(tpsBox, "decode tok/s (p50 per 10 s)", "tok/s", ids, false),
        ttft: makeChart(ttftBox, "TTFT p50 / p90 (per 10 s)", "seconds", ids, true),
      });
    }
    built = true;
  }

  // One x axis for a model's deployments: the union of their bucket times, as Unix seconds
  // (the feed's times are the engine's clock; `at` is its "now").
  function seriesData(feed, ids, fields) {
    const wallNow = Date.now() / 1000;
    const times = new Set();
    ids.forEach((d) => feed.traffic[d].series.t.forEach((t) => times.add(t)));
    const xs = [...times].sort((a, b) => a - b);
    const data = [xs.map((t) => wallNow - (feed.at - t))];
    ids.forEach((d) => {
      const s = feed.traffic[d].series;
      const at = new Map(s.t.map((t, i) => [t, i]));
      fields.forEach((f) => data.push(xs.map((t) => at.has(t) ? s[f][at.get(t)] : null)));
    });
    return [data, wallNow];
  }

  function drawCharts(feed) {
    for (const [model, c] of charts) {
      for (const [chart, fields] of [[c.tps, ["decode_tps_p50"]],
                                     [c.ttft, ["ttft_p50_s", "ttft_p90_s"]]]) {
        const [data, wallNow] = seriesData(feed, c.ids, fields);
        chart.batch(() => {
          chart.setData(data, false);
          chart.setScale("x", {min: wallNow - feed.window_s, max: wallNow});
        });
      }
    }
  }

  function fillTables(feed) {
    for (const [model, route] of Object.entries(feed.stats.models)) {
      const section = document.querySelector(`section.model[data-model="${CSS.escape(model)}"]`);
      for (const e of route.deployments) {
        const row = section.querySelector(`tr[data-deployment="${CSS.escape(e.deployment)}"]`);
        const totals = feed.traffic[e.deployment].totals;
        const share = feed.share[model][e.deployment];
        COLUMNS.forEach(([, field, value]) => {
          row.querySelector(`td[data-field="${field}"]`).textContent = value(e, totals, share);
        });
        row.querySelector('td[data-field="circuit"]').className = "circuit-" + e.circuit;
      }
    }
  }

  function candidateText(c) {
    return `${c.deployment} · ${fmt.ms(c.ttft_s)} · ${fmt.tps(c.decode_tps)} tok/s · ` +
           `${fmt.usd(c.cost_usd)} · n=${c.samples}`;
  }

  function fillDecisions(feed) {
    const body = document.querySelector("#decisions tbody");
    const rows = feed.decisions.slice(0, DECISIONS_SHOWN).map((d) => {
      const tr = el("tr", {"data-chosen": d.chosen});
      const aside = d.demoted.map((x) => `${x.deployment}: ${x.reason}`)
        .concat(d.excluded.map((x) => `${x.deployment} excluded: ${x.reason}`), d.notes);
      [fmt.age(d.age_s), d.model, d.chosen, d.why, d.policy, String(d.status)]
        .forEach((v) => tr.appendChild(el("td", {}, v)));
      const list = el("td", {"class": "candidates"});
      d.candidates.slice(0, 3).forEach((c) => list.appendChild(el("div", {}, candidateText(c))));
      tr.appendChild(list);
      tr.appendChild(el("td", {"class": "aside"}, aside.join("; ") || DASH));
      return tr;
    });
    body.replaceChildren(...rows);
    document.getElementById("no-decisions").hidden = rows.length > 0;
  }

  function render(feed) {
    if (!built) build(feed);
    fillTables(feed);
    drawCharts(feed);
    fillDecisions(feed);
    const anyTraffic = Object.values(feed.traffic).some((t) => t.totals.attempts > 0);
    document.getElementById("empty").hidden = anyTraffic;
    const status = document.getElementById("status");
    status.textContent = "live · updated " + new Date().toLocaleTimeString();
    status.dataset.updates = String(Number(status.dataset.updates || 0) + 1);
    status.className = "status live";
  }

  async function poll() {
    try {
      const answer = await fetch("/dashboard/data", {credentials: "same-origin",
                                                     cache: "no-store"});
      if (answer.status === 401) { window.location.reload(); return; }
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      render(await answer.json());
    } catch (err) {
      const status = document.getElementById("status");
      status.textContent = "disconnected (" + err.message + "), retrying";
      status.className = "status down";
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  window.addEventListener("resize", () => {
    for (const c of charts.values()) {
      c.tps.setSize({width: chartWidth(c.boxes[0]), height: 220});
      c.ttft.setSize({width: chartWidth(c.boxes[1]), height: 220});
    }
  });
  poll();
})();
