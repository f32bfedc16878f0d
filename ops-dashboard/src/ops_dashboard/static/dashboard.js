// msa ops dashboard: one EventSource, keyed DOM updates (an element is touched only when the
// value it shows changed), no framework and no build step.
"use strict";

(() => {
  const MAX_RATE = 400; // requests/s mapped to the biggest circle (Hystrix scale)
  const MIN_R = 5;
  const MAX_R = 125;
  const STOPS = [[10, [40, 167, 69]], [25, [255, 193, 7]], [40, [253, 126, 20]], [50, [220, 53, 69]]];
  const MAX_ALERTS = 200;
  const STALL_MS = 5000;
  const EDGE_EVENTS = ["rate_limited", "shed", "deadline_exceeded"]; // the columns of the edge table

  const $ = (id) => document.getElementById(id);
  const cards = new Map(); // breaker name -> card
  const groups = new Map(); // caller service -> its group on the wall
  const services = new Map(); // service name -> row
  const edgeRows = new Map(); // service name -> edge table row
  const histories = new Map(); // breaker name -> rates, oldest first
  let historyPoints = 120;
  let lastStateAt = 0;
  let connected = false;
  let redisState = { status: "connecting" };

  // ---- scales -------------------------------------------------------------------------------
  const radius = (rate) => {
    const r = Math.min(Math.max(Number(rate) || 0, 0), MAX_RATE);
    return MIN_R + (MAX_R - MIN_R) * Math.sqrt(r / MAX_RATE);
  };
  const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  const colour = (errorPct) => {
    const e = Number(errorPct) || 0;
    if (e <= STOPS[0][0]) return rgb(STOPS[0][1]);
    for (let i = 1; i < STOPS.length; i++) {
      const [lo, c0] = STOPS[i - 1];
      const [hi, c1] = STOPS[i];
      if (e < hi) {
        const t = (e - lo) / (hi - lo);
        return rgb(c0.map((v, k) => Math.round(v + (c1[k] - v) * t)));
      }
    }
    return rgb(STOPS[STOPS.length - 1][1]);
  };
  const fmtRate = (r) => `${(Number(r) || 0).toFixed(r >= 100 ? 0 : 1)}/s`;
  const fmtMs = (v) => (v === null || v === undefined ? "–" : `${Math.round(v)}`);
  const pad2 = (n) => String(n).padStart(2, "0");
  const fmtAge = (seconds) => {
    const s = Math.max(0, Math.floor(Number(seconds) || 0));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${pad2(s % 60)}s`;
    return `${Math.floor(s / 3600)}h ${pad2(Math.floor(s / 60) % 60)}m`;
  };
  const fmtTime = (iso) => {
    if (!iso) return "";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleTimeString();
  };

  // ---- keyed updates --------------------------------------------------------------------------
  function put(item, key, value, apply) {
    if (item.last[key] !== value) {
      item.last[key] = value;
      apply(value);
    }
  }
  const text = (item, key, el, value) => put(item, key, value, (v) => { el.textContent = v; });
  const attr = (item, key, el, name, value) => put(item, key, String(value), (v) => el.setAttribute(name, v));

  function keepOrder(container, elements) {
    // Move only what is out of place (appending a new card does not touch the others).
    let i = 0;
    for (const el of elements) {
      if (container.children[i] !== el) container.insertBefore(el, container.children[i] || null);
      i++;
    }
  }

  // ---- breakers: a group per caller, a card per callee, in the server's order ----------------
  function newGroup(caller) {
    const root = $("group-template").content.firstElementChild.cloneNode(true);
    root.dataset.caller = caller;
    root.querySelector(".caller").textContent = caller;
    return { root, cards: root.querySelector(".cards"), count: root.querySelector(".group-count"), last: {} };
  }

  function newCard(name) {
    const root = $("breaker-template").content.firstElementChild.cloneNode(true);
    const q = (sel) => root.querySelector(sel);
    root.dataset.name = name;
    return {
      root, last: {},
      circle: q(".circle"), name: q(".name"), traces: q(".traces"), label: q(".label"), since: q(".since"),
      error: q(".error"), rate: q(".rate"), spark: q(".spark-line"), success: q(".c-success"),
      short: q(".c-short"), bad: q(".c-bad"), hosts: q(".c-hosts"), timeout: q(".c-timeout"),
      fallback: q(".c-fallback"), stale: q(".c-stale"), failure: q(".c-failure"), rejected: q(".c-rejected"),
      retried: q(".c-retried"), requests: q(".c-requests"), latency: q(".latency"), replicas: q(".replicas"),
    };
  }

  // Zipkin Lens runs a search only when the URL has an endTs: stamp it as the link is followed.
  function stampTraces(event) {
    const link = event.target.closest ? event.target.closest("a.traces") : null;
    if (link && link.dataset.base) link.href = `${link.dataset.base}&endTs=${Date.now()}`;
  }

  function sparkPoints(series) {
    if (!series.length) return "";
    const max = Math.max(1, ...series);
    const step = 120 / Math.max(historyPoints - 1, 1);
    const offset = historyPoints - series.length; // newest point on the right edge
    return series.map((v, i) => `${((offset + i) * step).toFixed(1)},${(23 - (v / max) * 22).toFixed(1)}`).join(" ");
  }

  function renderBreaker(card, b) {
    const c = b.counts || {};
    attr(card, "state", card.root, "data-state", b.state);
    attr(card, "r", card.circle, "r", radius(b.rate).toFixed(1));
    attr(card, "fill", card.circle, "fill", colour(b.error_percentage));
    attr(card, "errorAttr", card.root, "data-error", b.error_percentage);
    put(card, "opacity", Math.max(0.15, b.freshness).toFixed(2), (v) => { card.root.style.opacity = v; });
    text(card, "name", card.name, b.callee || b.name);
    attr(card, "title", card.name, "title", `${b.name} (breaker of ${b.service})`);
    put(card, "traces", b.traces_url || "", (url) => {
      card.traces.dataset.base = url; // built by the server from its ZIPKIN_UI_URL
      card.traces.href = url;
      card.traces.hidden = !url;
    });
    text(card, "label", card.label, b.label);
    const bound = b.state_age_is_lower_bound;
    text(card, "since", card.since, `${bound ? "≥" : ""}${fmtAge(b.state_age_s)}`);
    attr(card, "sinceTitle", card.since, "title", bound
      ? "in this state at least this long: it already was when this dashboard first saw it"
      : "in this state since this dashboard saw it change (to within about 2 s)");
    text(card, "error", card.error, `${b.error_percentage.toFixed(1)} %`);
    text(card, "rate", card.rate, fmtRate(b.rate));
    text(card, "success", card.success, `ok ${c.success ?? 0}`);
    text(card, "short", card.short, `short ${c.short_circuited ?? 0}`);
    text(card, "bad", card.bad, `bad req ${c.bad_request ?? 0}`);
    text(card, "timeout", card.timeout, `timeout ${c.timeout ?? 0}`);
    text(card, "failure", card.failure, `failed ${c.failure ?? 0}`);
    text(card, "rejected", card.rejected, `rejected ${c.rejected ?? 0}`);
    text(card, "retried", card.retried, `retried ${c.retried ?? 0}`);
    text(card, "fallback", card.fallback, `fb ${c.fallback_success ?? 0}/${c.fallback_failure ?? 0}`);
    text(card, "requests", card.requests, `${b.request_count} req`);
    text(card, "hosts", card.hosts, `hosts ${b.reporting_hosts}`);
    text(card, "stale", card.stale, b.stale_hosts ? `, ${b.stale_hosts} silent` : "");
    const l = b.latency_ms || {};
    text(card, "latency", card.latency, `p50 ${fmtMs(l.p50)} · p90 ${fmtMs(l.p90)} · p99 ${fmtMs(l.p99)} ms`);
    attr(card, "latencyTitle", card.latency, "title", "latency percentiles, mean across replicas weighted by their answered calls");
    const replicas = (b.replicas || [])
      .map((r) => `${r.replica}: ${r.state}${r.stale ? ` (silent ${Math.round(r.age_s)}s)` : ""}`)
      .join(" · ");
    text(card, "replicas", card.replicas, replicas);
    attr(card, "replicasTitle", card.replicas, "title", replicas);
    attr(card, "spark", card.spark, "points", sparkPoints(histories.get(b.name) || []));
  }

  function renderBreakers(state) {
    const seen = new Set();
    const ordered = new Map(); // caller -> its cards' roots, in order (Map: groups in order too)
    for (const b of state.breakers) {
      seen.add(b.name);
      if (state.full) {
        histories.set(b.name, (b.history || []).slice(-historyPoints));
      } else {
        const series = histories.get(b.name) || [];
        series.push(b.rate);
        if (series.length > historyPoints) series.splice(0, series.length - historyPoints);
        histories.set(b.name, series);
      }
      let card = cards.get(b.name);
      if (!card) {
        card = newCard(b.name);
        cards.set(b.name, card);
      }
      renderBreaker(card, b);
      if (!ordered.has(b.service)) ordered.set(b.service, []);
      ordered.get(b.service).push(card.root);
    }
    for (const [name, card] of cards) {
      if (!seen.has(name)) {
        card.root.remove();
        cards.delete(name);
        histories.delete(name);
      }
    }
    for (const [caller, group] of groups) {
      if (!ordered.has(caller)) {
        group.root.remove();
        groups.delete(caller);
      }
    }
    const groupRoots = [];
    for (const [caller, roots] of ordered) {
      let group = groups.get(caller);
      if (!group) {
        group = newGroup(caller);
        groups.set(caller, group);
      }
      keepOrder(group.cards, roots);
      text(group, "count", group.count, `(${roots.length})`);
      groupRoots.push(group.root);
    }
    keepOrder($("breakers"), groupRoots);
    $("no-breakers").hidden = cards.size > 0;
    $("breaker-count").textContent = cards.size ? `(${cards.size})` : "";
  }

  // ---- services -------------------------------------------------------------------------------
  function newServiceRow(name) {
    const root = document.createElement("li");
    root.dataset.name = name;
    const dot = document.createElement("span");
    dot.className = "dot";
    const label = document.createElement("span");
    label.className = "svc-name";
    const detail = document.createElement("span");
    detail.className = "svc-detail";
    root.append(dot, label, detail);
    return { root, label, detail, last: {} };
  }

  function renderServices(list) {
    const seen = new Set();
    const ordered = [];
    for (const s of list) {
      seen.add(s.name);
      let row = services.get(s.name);
      if (!row) {
        row = newServiceRow(s.name);
        services.set(s.name, row);
      }
      attr(row, "status", row.root, "data-status", s.status);
      text(row, "name", row.label, s.name);
      const checks = Object.entries(s.checks || {}).map(([k, v]) => `${k} ${v}`).join(", ");
      const parts = [s.status];
      if (s.latency_ms !== null && s.latency_ms !== undefined) parts.push(`${Math.round(s.latency_ms)}ms`);
      if (s.error) parts.push(s.error);
      if (checks) parts.push(checks);
      if (s.since) parts.push(`since ${fmtTime(s.since)}`);
      text(row, "detail", row.detail, parts.join(" · "));
      attr(row, "title", row.root, "title", s.url || "");
      ordered.push(row.root);
    }
    for (const [name, row] of services) {
      if (!seen.has(name)) {
        row.root.remove();
        services.delete(name);
      }
    }
    keepOrder($("services"), ordered);
    $("no-services").hidden = services.size > 0;
  }

  // ---- edge: requests each service refused at once ---------------------------------------------
  function newEdgeRow(name) {
    const root = document.createElement("tr");
    root.dataset.name = name;
    const label = document.createElement("td");
    const cells = EDGE_EVENTS.map((event) => {
      const td = document.createElement("td");
      td.className = `e-${event}`;
      return td;
    });
    root.append(label, ...cells);
    return { root, label, cells, last: {} };
  }

  function renderEdge(list) {
    const seen = new Set();
    const ordered = [];
    for (const e of list) {
      seen.add(e.service);
      let row = edgeRows.get(e.service);
      if (!row) {
        row = newEdgeRow(e.service);
        edgeRows.set(e.service, row);
      }
      const c = e.counts || {};
      text(row, "name", row.label, e.service);
      EDGE_EVENTS.forEach((event, i) => {
        const n = c[event] ?? 0;
        text(row, event, row.cells[i], String(n));
        put(row, `${event}-hot`, n > 0, (hot) => row.cells[i].classList.toggle("hot", hot));
      });
      attr(row, "quiet", row.root, "data-quiet", EDGE_EVENTS.every((event) => !c[event]));
      put(row, "opacity", Math.max(0.15, e.freshness).toFixed(2), (v) => { row.root.style.opacity = v; });
      const hosts = `${e.reporting_hosts} replicas reporting${e.stale_hosts ? `, ${e.stale_hosts} silent` : ""}`;
      attr(row, "title", row.root, "title", hosts);
      ordered.push(row.root);
    }
    for (const [name, row] of edgeRows) {
      if (!seen.has(name)) {
        row.root.remove();
        edgeRows.delete(name);
      }
    }
    keepOrder($("edge-rows"), ordered);
    $("edge").hidden = edgeRows.size === 0;
    $("no-edge").hidden = edgeRows.size > 0;
    const windowS = list.length ? list[0].window_s : 10;
    const caption = `requests refused at once, last ${windowS} s`;
    if ($("edge-window").textContent !== caption) $("edge-window").textContent = caption;
  }

  // ---- alerts ---------------------------------------------------------------------------------
  function alertItem(a) {
    const li = document.createElement("li");
    li.dataset.id = a.id;
    const level = document.createElement("span");
    level.className = "level";
    level.dataset.level = a.level || "";
    level.textContent = a.level || "ERROR";
    const when = document.createElement("span");
    when.className = "when";
    when.textContent = ` ${fmtTime(a.timestamp)} `;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = [a.service, a.logger].filter(Boolean).join(" · ");
    const message = document.createElement("div");
    message.className = "message";
    message.textContent = a.message || "";
    li.append(level, when, who, message);
    if (a.trace_url) {
      const link = document.createElement("a");
      link.className = "trace-link";
      link.href = a.trace_url; // built by the server from a validated hex trace id
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.textContent = `trace ${a.trace_id} in Zipkin ↗`;
      li.append(link);
    }
    if (a.request_id) {
      const rid = document.createElement("span");
      rid.className = "who";
      rid.textContent = ` request ${a.request_id}`;
      li.append(rid);
    }
    if (a.stack_trace) {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "stack trace";
      const pre = document.createElement("pre");
      pre.textContent = a.stack_trace;
      details.append(summary, pre);
      li.append(details);
    }
    return li;
  }

  function alertsChanged() {
    const list = $("alerts");
    while (list.children.length > MAX_ALERTS) list.lastElementChild.remove();
    $("no-alerts").hidden = list.children.length > 0;
    $("alert-count").textContent = list.children.length ? `(${list.children.length})` : "";
  }

  function onAlerts(backlog) {
    $("alerts").replaceChildren(...backlog.map(alertItem));
    alertsChanged();
  }

  function onAlert(a) {
    $("alerts").prepend(alertItem(a));
    alertsChanged();
  }

  // ---- status ---------------------------------------------------------------------------------
  function renderStatus() {
    const conn = $("connection");
    const stalled = connected && Date.now() - lastStateAt > STALL_MS;
    const status = !connected ? "lost" : stalled ? "stalled" : "live";
    if (conn.dataset.status !== status) {
      conn.dataset.status = status;
      conn.textContent = status === "live" ? "live" : status === "stalled" ? "stream stalled" : "disconnected";
    }
    const redis = $("redis");
    if (redis.dataset.status !== redisState.status) {
      redis.dataset.status = redisState.status;
      redis.textContent = `Redis ${redisState.status}`;
    }
    const banner = $("banner");
    let message = "";
    let level = "warn";
    if (status !== "live") {
      message = "Lost the live stream from the dashboard server: reconnecting… (numbers below are frozen)";
      level = "bad";
    } else if (redisState.status === "down") {
      message = `Redis is unreachable since ${fmtTime(redisState.since)}: no breaker metrics or alerts arrive; ` +
        "circles fade as their replicas go silent. The dashboard reconnects by itself.";
      level = "bad";
    }
    banner.hidden = !message;
    if (banner.textContent !== message) banner.textContent = message;
    banner.dataset.level = level;
  }

  // Render time of the last state events, read by scripts/bench_dashboard.py --browser.
  const renderMs = [];
  window.dashboardStats = { renderMs };

  function onState(state) {
    const started = performance.now();
    lastStateAt = Date.now();
    historyPoints = (state.config && state.config.history_points) || historyPoints;
    redisState = state.redis || redisState;
    renderBreakers(state);
    renderServices(state.services || []);
    renderEdge(state.edge || []);
    $("updated").textContent = `updated ${fmtTime(state.time)} · tick ${state.tick_ms} ms`;
    renderStatus();
    renderMs.push(performance.now() - started);
    if (renderMs.length > 600) renderMs.shift();
  }

  // ---- stream ---------------------------------------------------------------------------------
  function connect() {
    const source = new EventSource("/stream");
    source.addEventListener("open", () => { connected = true; renderStatus(); });
    source.addEventListener("error", () => { connected = false; renderStatus(); });
    source.addEventListener("state", (e) => onState(JSON.parse(e.data)));
    source.addEventListener("alerts", (e) => onAlerts(JSON.parse(e.data)));
    source.addEventListener("alert", (e) => onAlert(JSON.parse(e.data)));
  }

  $("breakers").addEventListener("pointerdown", stampTraces);
  $("breakers").addEventListener("click", stampTraces);
  setInterval(renderStatus, 1000);
  connect();
})();
