// Live dashboard: websocket stream -> typed-array buffers per device -> one uPlot redraw per animation frame.
"use strict";
(() => {
  const ACK_EVERY = 10;            // acknowledge every N messages (server-side flow control)
  const LOG_SIZE = 4096;           // latency log entries kept for benchmarks
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
  const $ = (id) => document.getElementById(id);
  const wallNow = () => performance.timeOrigin + performance.now();
  const { Series, Decimated, DECIMATE_ABOVE, COLUMN_PX } = window.sensorBuffers;

  // Exposed for tests and benchmarks: what was received and drawn, and when (epoch ms).
  const stats = {
    messages: 0, bytes: 0, frames: 0, fps: 0, rafs: 0, lastArrived: null, lastDrawn: null,
    framesLost: 0, reconnects: 0, points: 0, drawMs: 0, latest: null, log: [], logNext: 0, connected: false, device: null,
  };
  window.__sensorStats = stats;

  // Lines the reader read but could not keep, by cause ("12: disk full 10, buffer overflow 2").
  function lostText(st) {
    if (st.lost_lines == null) return "–";
    const causes = Object.entries(st.lost || {}).filter(([, n]) => n > 0)
      .map(([cause, n]) => `${cause.replace(/_/g, " ")} ${n}`);
    return causes.length ? `${st.lost_lines}: ${causes.join(", ")}` : String(st.lost_lines);
  }

  const ui = {
    windowSec: Number(document.body.dataset.defaultWindow || 10),
    paused: false,
    current: null,
    devices: new Map(),   // name -> {series, status, health}
    chart: null,
    chartKey: null,
    lastDrawnEnd: -1,
    hidden: new Set(),
    joinPending: false,   // the backfill is still arriving on this connection
    fellBehind: 0,        // times the server dropped this page for falling too far behind
  };

  // ---- websocket with reconnect and acknowledgements ----
  let ws = null;
  let attempt = 0;
  let received = 0;

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${proto}//${location.host}${document.body.dataset.wsPath}`);
    received = 0;
    setConn("connecting", "connecting…");
    ws.onopen = () => {
      // The server sends its backfill again: start the buffers afresh instead of merging.
      ui.devices.forEach((d) => { d.series = null; });
      ui.chartKey = null;
      ui.joinPending = true;
      stats.connected = true;
      setConn("open", "live");
    };
    ws.onmessage = (ev) => {
      attempt = 0;
      received++;
      if (received % ACK_EVERY === 0) ws.send(`{"ack":${received}}`);
      onMessage(ev.data);
    };
    ws.onclose = (ev) => {
      stats.connected = false;
      attempt++;
      stats.reconnects++;
      const delay = Math.min(10000, 500 * 2 ** Math.min(attempt - 1, 5)) * (0.75 + Math.random() * 0.5);
      const again = `reconnecting in ${(delay / 1000).toFixed(1)} s`;
      // 4008: the server dropped this page for falling too far behind (a slow link or a stalled tab)
      if (ev.code === 4008) ui.fellBehind++;
      setConn("closed", ev.code === 4403 ? "refused (log in again)" : ev.code === 4008 ? `too far behind, ${again}` : again);
      setTimeout(connect, delay);
    };
  }

  function setConn(state, text) {
    const el = $("conn-state");
    el.dataset.state = state;
    el.textContent = text;
  }

  function deviceEntry(name) {
    let d = ui.devices.get(name);
    if (!d) {
      d = { series: null, status: null, health: null };
      ui.devices.set(name, d);
      const opt = document.createElement("option");
      opt.value = name;
      opt.textContent = name;
      $("device-select").appendChild(opt);
      if (!ui.current) selectDevice(name);
    }
    return d;
  }

  function onMessage(text) {
    const arrived = wallNow();
    stats.messages++;
    stats.bytes += text.length;
    const msg = JSON.parse(text);
    if (msg.type === "samples") {
      const d = deviceEntry(msg.device);
      const key = msg.session + "|" + msg.columns.join(",");
      if (!d.series || d.series.key !== key) {
        d.series = new Series(msg.session, msg.columns);
        d.series.key = key;
      }
      const s = d.series;
      // Backfill and live frames come in one ordered stream (the server switches from one to the other
      // atomically): frame numbers only go up, and a gap means frames lost between the reader and here.
      if (msg.frame <= s.lastFrame) return;
      if (s.lastFrame >= 0 && msg.frame > s.lastFrame + 1) stats.framesLost += msg.frame - s.lastFrame - 1;
      s.lastFrame = msg.frame;
      s.append(msg.rows, msg.n, arrived, msg.decimation || 1);
      if (msg.device === ui.current) stats.lastArrived = arrived;
    } else if (msg.type === "status") {
      deviceEntry(msg.device).status = { ...msg, connected: !!msg.connected };
      renderStatus();
    } else if (msg.type === "health") {
      if (ui.joinPending) markJoin();
      for (const [name, dev] of Object.entries(msg.devices || {})) {
        const d = deviceEntry(name);
        d.status = { ...(d.status || {}), ...dev };
      }
      ui.health = msg;
      renderStatus();
    } else if (msg.type === "marker" && window.sensorMarkers) {
      window.sensorMarkers.add(msg);  // markers.js lists and draws it
    }
  }

  // The first health message on a connection follows the backfill: what came before it was history.
  function markJoin() {
    ui.joinPending = false;
    ui.devices.forEach((d) => {
      const s = d.series;
      if (s && s.end > s.start) s.join = { t: s.t[s.end - 1], frame: s.lastFrame, index: s.base + s.end - 1 };
    });
  }

  // ---- chart ----
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  // ISO 8601, 24-hour, UTC (session ids and the batch files are UTC too).
  const isoDate = (d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  function isoTime(d, digits) {
    const base = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    return digits ? `${base}.${pad(d.getUTCMilliseconds(), 3).slice(0, digits)}` : base;
  }
  // Tick labels: the time of day, with as many decimals as the tick spacing needs; the date under the first.
  function timeTicks(u, splits, axisIdx, space, incr) {
    let digits = 0;
    while (digits < 3 && Math.abs(incr * 10 ** digits - Math.round(incr * 10 ** digits)) > 1e-6) digits++;
    return splits.map((v, i) => {
      const d = new Date(v * 1000);
      return i === 0 ? `${isoTime(d, digits)}\n${isoDate(d)}` : isoTime(d, digits);
    });
  }
  function unitLabel() {
    const d = ui.current && ui.devices.get(ui.current);
    const unit = d && d.status && d.status.unit;
    return unit ? String(unit) : "value";
  }
  function chartSize() {
    const el = $("chart");
    return { width: Math.max(280, el.clientWidth), height: Math.max(200, el.clientHeight) };
  }

  function buildChart(series) {
    const el = $("chart");
    el.textContent = "";
    if (ui.chart) ui.chart.destroy();
    const opts = {
      ...chartSize(),
      pxAlign: 0,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: true } },
      series: [{}].concat(series.plotted.map((c, k) => ({
        label: series.columns[c], stroke: COLORS[k % COLORS.length], width: 1, points: { show: false },
        show: !ui.hidden.has(series.columns[c]),
      }))),
      axes: [
        { label: "time (UTC)", values: timeTicks, space: 80, size: 60 },
        { label: unitLabel(), size: 60 },
      ],
      plugins: window.sensorMarkers ? [window.sensorMarkers.plugin()] : [],
    };
    ui.chart = new uPlot(opts, [new Float64Array(0)].concat(series.plotted.map(() => new Float64Array(0))), el);
    ui.chartKey = series.key;
    ui.chartUnit = unitLabel();
    ui.lastDrawKey = null;
    buildToggles(series);
  }

  function buildToggles(series) {
    const box = $("channels");
    box.textContent = "";
    ui.valueCells = [];
    series.plotted.forEach((c, k) => {
      const name = series.columns[c];
      const label = document.createElement("label");
      const box1 = document.createElement("input");
      box1.type = "checkbox";
      box1.checked = !ui.hidden.has(name);
      box1.dataset.channel = name;
      box1.addEventListener("change", () => {
        if (box1.checked) ui.hidden.delete(name); else ui.hidden.add(name);
        ui.chart.setSeries(k + 1, { show: box1.checked });
      });
      const sw = document.createElement("span");
      sw.className = `swatch sw-${k % COLORS.length}`;
      const value = document.createElement("span");
      value.className = "value";
      value.dataset.channel = name;
      label.append(box1, sw, document.createTextNode(name), value);
      box.appendChild(label);
      ui.valueCells.push(value);
    });
  }

  function draw() {
    const d = ui.current && ui.devices.get(ui.current);
    const s = d && d.series;
    if (!s || s.end <= s.start) return false;
    if (ui.chartKey !== s.key || ui.chartUnit !== unitLabel()) buildChart(s);
    // Scroll with the wall clock between frames, but never run ahead of the data by more than 0.25 s.
    const newestT = s.t[s.end - 1];
    const ahead = Math.min(0.25, Math.max(0, (wallNow() - s.newestArrived) / 1000));
    const xmax = newestT + ahead;
    const xmin = xmax - ui.windowSec;
    const drawKey = `${s.key}|${s.end}|${xmax}|${ui.windowSec}|${ui.chartKey}`;
    if (drawKey === ui.lastDrawKey) return false;  // nothing new and the clock has caught up: idle
    ui.lastDrawKey = drawKey;
    const began = performance.now();
    const i0 = s.lowerBound(xmin);
    const width = ui.chart.bbox.width / devicePixelRatio || 800;
    let data;
    if (s.end - i0 > DECIMATE_ABOVE * width) {
      const dt = (COLUMN_PX * ui.windowSec) / width;
      if (!s.dec || s.dec.dt !== dt) s.dec = new Decimated(s, dt);
      s.dec.update();
      data = s.dec.view(xmin);
      stats.decimated = true;
    } else {
      stats.decimated = false;
      data = [s.t.subarray(i0, s.end)].concat(s.y.map((a) => a.subarray(i0, s.end)));
    }
    ui.chart.batch(() => {
      ui.chart.setData(data, true);
      ui.chart.setScale("x", { min: xmin, max: xmax });
    });
    const drawn = wallNow();
    stats.drawMs = 0.9 * stats.drawMs + 0.1 * (performance.now() - began);
    stats.frames++;
    stats.points = (s.end - i0) * s.y.length;
    stats.xRange = [xmin, xmax];
    if (s.end !== ui.lastDrawnEnd) {
      ui.lastDrawnEnd = s.end;
      stats.lastDrawn = drawn;
      const newest = s.newest();
      stats.latest = { device: ui.current, session: s.session, ...newest };
      const entry = { seq: newest.seq, t: newest.time, arrived: s.newestArrived, drawn };
      if (stats.log.length < LOG_SIZE) stats.log.push(entry); else stats.log[stats.logNext] = entry;
      stats.logNext = (stats.logNext + 1) % LOG_SIZE;
    }
    return true;
  }

  let fpsCount = 0;
  let fpsSince = performance.now();
  let valuesAt = 0;
  function tick(now) {
    requestAnimationFrame(tick);
    stats.rafs++;
    if (!ui.paused && draw()) fpsCount++;
    if (now - fpsSince >= 1000) {
      stats.fps = (fpsCount * 1000) / (now - fpsSince);
      fpsCount = 0;
      fpsSince = now;
      $("fps").textContent = ui.paused ? "paused" : `${stats.fps.toFixed(0)} fps`;
    }
    if (now - valuesAt > 200 && stats.latest && ui.valueCells) {
      valuesAt = now;
      const vals = stats.latest.text;
      ui.valueCells.forEach((cell) => {
        const v = vals[cell.dataset.channel];
        cell.textContent = v === undefined ? "" : v;
      });
      $("latest-seq").textContent = stats.latest.seq == null ? "" : `seq ${stats.latest.seq}`;
    }
  }

  // ---- status panel ----
  const fmtBytes = (b) => {
    if (b == null) return "–";
    const u = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (b >= 1000 && i < u.length - 1) { b /= 1000; i++; }
    return `${b.toFixed(i ? 1 : 0)} ${u[i]}`;
  };
  const fmtAgo = (epoch) => {
    if (!epoch) return "never";
    const s = Math.max(0, Date.now() / 1000 - epoch);
    if (s < 90) return `${s.toFixed(0)} s ago`;
    if (s < 5400) return `${(s / 60).toFixed(0)} min ago`;
    return `${(s / 3600).toFixed(1)} h ago`;
  };
  const set = (id, text) => { const el = $(id); if (el.textContent !== text) el.textContent = text; };

  // One state for the device row and the reader row, so the two never contradict each other.
  function deviceState(st) {
    if (st.reader_online === false) return { key: "offline", device: "unknown (reader offline)", reader: "offline" };
    const device = st.connected ? "connected" : "disconnected";
    if (st.disk_error) return { key: "error", device, reader: `disk error: ${st.disk_error}` };
    if (!st.connected) return { key: "waiting", device, reader: "waiting for the device" };
    return { key: st.recording ? "recording" : "streaming", device, reader: st.recording ? "recording" : "streaming, not recording" };
  }

  // Long values (a port path, a session id) stay on one line, cut with an ellipsis; the full text is the tooltip.
  function setTitled(id, text) {
    set(id, text);
    $(id).title = text;
  }

  // Display drops, shown only when there are any: frames the reader could not hand to the web app, frames
  // missing between the reader and this page, times this page fell too far behind and was reconnected.
  function renderDrops(st) {
    const parts = [];
    const atReader = (st && st.frames_dropped) || 0;
    if (atReader) parts.push(`${atReader} not sent by the reader (web app busy or unreachable)`);
    if (stats.framesLost) parts.push(`${stats.framesLost} lost on the way to this page`);
    if (ui.fellBehind) parts.push(`this page fell behind ${ui.fellBehind}× and reloaded its data`);
    stats.dropped = atReader + stats.framesLost;
    $("drops-row").hidden = parts.length === 0;
    set("st-dropped", parts.join("; "));
  }

  function renderStatus() {
    const d = ui.current && ui.devices.get(ui.current);
    const st = d && d.status;
    const state = $("device-state");
    if (st) {
      const now = deviceState(st);
      state.dataset.connected = String(!!st.connected);
      state.dataset.state = now.key;
      set("device-state", now.device);
      set("st-reader", now.reader);
      setTitled("st-port", st.port || "–");
      setTitled("st-session", st.session || "–");
      set("st-rate", st.rate != null ? `${Number(st.rate).toFixed(0)} Hz` : "–");
      set("st-lines", st.lines != null ? String(st.lines) : "–");
      set("st-rejects", st.rejects != null ? String(st.rejects) : "–");
      set("st-gaps", st.gaps != null ? `${st.gaps} (${st.missing || 0})` : "–");
      set("st-lost", lostText(st));
    }
    renderDrops(st);
    const h = ui.health;
    if (!h) return;
    const services = Object.entries(h.services || {}).map(([name, st]) => {
      const state = name.startsWith("reader-") ? (st.connected ? "device connected" : "device disconnected") : (st.state || "?");
      const age = typeof st.time === "number" ? `, ${fmtAgo(st.time)}` : "";
      return `${name}: ${state}${age}`;
    });
    set("st-services", services.length ? services.join("; ") : "none in .status/");
    const up = h.uploader;
    if (up) {
      set("st-uploader", up.error ? `${up.state}: ${up.error}` : String(up.state || "–"));
      set("st-backlog", `${up.backlog_batches ?? "–"} batches, ${fmtBytes(up.backlog_bytes)}`);
      set("st-last-upload", fmtAgo(up.last_upload));
    } else {
      set("st-uploader", "no status published");
    }
    if (h.disk) set("st-disk", `${fmtBytes(h.disk.used)} of ${fmtBytes(h.disk.total)} used (${h.disk.percent}%), ${fmtBytes(h.disk.free)} free`);
    if (h.web) {
      const behind = h.web.viewers_dropped ? ` (${h.web.viewers_dropped} disconnected for falling behind)` : "";
      set("st-viewers", `${h.web.viewers}${behind}`);
    }
    const alarm = $("alarm");
    const lines = h.alarms || [];
    alarm.hidden = lines.length === 0;
    set("alarm", lines.join(" · "));
  }

  function selectDevice(name) {
    ui.current = name;
    stats.device = name;
    ui.chartKey = null;
    ui.lastDrawnEnd = -1;
    $("device-select").value = name;
    renderStatus();
  }

  // ---- controls ----
  $("device-select").addEventListener("change", (e) => selectDevice(e.target.value));
  $("window-select").addEventListener("change", (e) => { ui.windowSec = Number(e.target.value); });
  $("pause-button").addEventListener("click", (e) => {
    ui.paused = !ui.paused;
    e.target.textContent = ui.paused ? "Resume" : "Pause";
    e.target.setAttribute("aria-pressed", String(ui.paused));
    $("fps").textContent = ui.paused ? "paused" : "";
  });
  // The chart fills its box, which the layout sizes to the page (desktop and phone alike).
  new ResizeObserver(() => {
    if (ui.chart) ui.chart.setSize(chartSize());
    ui.lastDrawKey = null;
  }).observe($("chart"));

  // For tests: the chart and the current device's buffers.
  const currentSeries = () => { const d = ui.current && ui.devices.get(ui.current); return d && d.series; };
  window.__sensorDebug = {
    chart: () => ui.chart,
    series: currentSeries,
  };
  // Read-only view for tests and tools: copies of what the chart draws, and where the backfill ended.
  window.sensorDashboard = {
    data: () => {
      const u = ui.chart;
      const s = currentSeries();
      if (!u || !s) return null;
      return {
        x: Array.from(u.data[0]), y: u.data.slice(1).map((a) => Array.from(a)), decimated: !!stats.decimated,
        xRange: stats.xRange, join: s.join || null, period: s.rowSum > 0 ? s.gapSum / s.rowSum : null,
        seq: stats.decimated ? null : Array.from(s.seq.subarray(s.lowerBound(u.data[0][0])).subarray(0, u.data[0].length)),
      };
    },
    dropped: () => stats.dropped || 0,
    labels: () => ui.chart && ui.chart.axes.map((a) => a.label),
  };

  connect();
  requestAnimationFrame(tick);
})();
