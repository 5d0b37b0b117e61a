// Event markers: place one (button or the "m" key, then an inline label form), list them, draw them on the chart.
// dashboard.js hands over "marker" stream messages (add) and puts plugin() into the uPlot options.
"use strict";
(() => {
  const COLOR = "#e6550d";
  const $ = (id) => document.getElementById(id);
  const api = document.body.dataset.markersApi;
  const csrfToken = document.body.dataset.csrfToken || "";
  const button = $("marker-button");
  const form = $("marker-form");
  const input = $("marker-label");
  const error = $("marker-error");
  const list = $("marker-list");

  const byId = new Map();  // marker id -> {id, time, label, source, user, device, session, t (epoch s)}
  // For tests: what was placed and refused, and the labels drawn on the chart at its last redraw.
  const state = { placed: 0, refused: 0, drawn: [] };

  const currentDevice = () => (window.__sensorStats ? window.__sensorStats.device : null);
  // The file keeps microseconds; Date.parse wants at most milliseconds.
  const epochSeconds = (iso) => Date.parse(iso.replace(/(\.\d{3})\d*Z$/, "$1Z")) / 1000;

  function add(msg) {
    const m = msg && msg.marker;
    if (!m || byId.has(m.id)) return;  // a reconnect's backfill repeats what we have
    byId.set(m.id, { ...m, device: msg.device, session: msg.session, t: epochSeconds(m.time) });
    render();
  }

  function shown() {
    const device = currentDevice();
    return [...byId.values()].filter((m) => m.device === device).sort((a, b) => a.t - b.t);
  }

  function render() {
    list.textContent = "";
    for (const m of shown()) {
      const item = document.createElement("li");
      const when = document.createElement("time");
      when.dateTime = m.time;
      when.textContent = `${m.time.slice(11, 19)} UTC`;
      item.append(when, document.createTextNode(m.label));
      item.title = `${m.source}${m.user ? ` (${m.user})` : ""}`;
      list.appendChild(item);
    }
    const chart = window.__sensorDebug && window.__sensorDebug.chart();
    if (chart) chart.redraw(false, false);  // draw it now, even while paused
  }

  // A uPlot plugin: one vertical line per marker of the shown device, its label at the top.
  function plugin() {
    return {
      hooks: {
        draw: [(u) => {
          const { left, top, width, height } = u.bbox;
          const ctx = u.ctx;
          const px = window.devicePixelRatio || 1;
          const drawn = [];
          ctx.save();
          ctx.beginPath();
          ctx.rect(left, top, width, height);
          ctx.clip();
          ctx.strokeStyle = COLOR;
          ctx.fillStyle = COLOR;
          ctx.lineWidth = 1.5 * px;
          ctx.font = `${12 * px}px system-ui, sans-serif`;
          ctx.textAlign = "left";  // uPlot leaves the axes' alignment on the context
          ctx.textBaseline = "alphabetic";
          for (const m of shown()) {
            const x = Math.round(u.valToPos(m.t, "x", true));
            if (!(x >= left && x <= left + width)) continue;
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + height);
            ctx.stroke();
            ctx.fillText(m.label, x + 4 * px, top + 14 * px);
            drawn.push(m.label);
          }
          ctx.restore();
          state.drawn = drawn;
        }],
      },
    };
  }

  function openForm() {
    form.hidden = false;
    button.setAttribute("aria-expanded", "true");
    error.textContent = "";
    input.value = "";
    input.focus();
  }

  function closeForm() {
    form.hidden = true;
    button.setAttribute("aria-expanded", "false");
    button.focus();
  }

  async function place(label) {
    const body = { label };
    const device = currentDevice();
    if (device) body.device = device;
    let res;
    let doc = {};
    try {
      res = await fetch(api, {
        method: "POST", credentials: "same-origin", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      });
      doc = await res.json().catch(() => ({}));
    } catch (err) {
      res = null;
    }
    if (!res || !res.ok) {
      state.refused++;
      error.textContent = doc.error || (res ? `not stored (HTTP ${res.status})` : "not stored: the box does not answer");
      return;
    }
    state.placed++;
    add(doc);
    closeForm();
  }

  button.addEventListener("click", () => (form.hidden ? openForm() : closeForm()));
  $("marker-cancel").addEventListener("click", closeForm);
  input.addEventListener("keydown", (e) => { if (e.key === "Escape") closeForm(); });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const label = input.value.trim();
    if (label) place(label);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "m" || e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    e.preventDefault();
    openForm();
  });
  $("device-select").addEventListener("change", () => setTimeout(render));  // after the dashboard's own handler

  window.sensorMarkers = { add, plugin, state, markers: () => [...byId.values()] };
})();
