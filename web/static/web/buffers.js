// Sample buffers of the live dashboard: typed arrays per device, and their per-column min/max view.
"use strict";
(() => {
  const KEEP_SECONDS = 30;   // history kept per device (the largest selectable window)
  // Rows carry the time the reader received their chunk, so a chunk's rows share one time stamp, and a
  // chunk read late holds rows that came earlier. Drawn as is, every chunk would be a vertical stroke and a
  // straight line to the next. So rows are drawn on a display clock: each one estimated row period after the
  // previous row, sped up or slowed down (to at most 1.75 and at least 1/2 period a row) so that a chunk's
  // last row lands on its receive time. A silence longer than SPREAD_MAX is a real pause of the device and
  // stays a gap. Display only: the batch files keep the receive times.
  const SPREAD_MAX = 0.25;
  const DECAY = 0.99;  // per chunk, for the period estimate (about the last 100 chunks)

  // One device's samples: a linear typed-array buffer, compacted when full (amortised O(1) append) so
  // that any window is a contiguous subarray handed to uPlot without copying.
  class Series {
    constructor(session, columns) {
      this.session = session;
      this.columns = columns;
      this.seqIndex = columns.indexOf("seq");
      this.plotted = columns.map((c, i) => i).filter((i) => i !== this.seqIndex);
      this.cap = 8192;
      this.alloc(this.cap);
      this.start = 0;
      this.end = 0;
      this.base = 0;   // absolute sample number of array index 0 (data moves when compacted)
      this.dec = null; // the decimated view for the current window and width
      this.lastFrame = -1;
      this.newestArrived = 0;
      this.newestRaw = 0;  // receive time of the newest row (its drawn time is on the display clock)
      this.gapSum = 0;     // decaying sums of the time between chunks and of their rows: the row period
      this.rowSum = 0;
    }
    alloc(cap) {
      const old = this.t;
      const oldY = this.y;
      const oldSeq = this.seq;
      this.t = new Float64Array(cap);
      this.seq = new Float64Array(cap);
      this.y = this.plotted.map(() => new Float64Array(cap));
      if (old) {
        const n = this.end - this.start;
        this.base += this.start;
        this.t.set(old.subarray(this.start, this.end));
        this.y.forEach((a, k) => a.set(oldY[k].subarray(this.start, this.end)));
        this.seq.set(oldSeq.subarray(this.start, this.end));
        this.start = 0;
        this.end = n;
      }
      this.cap = cap;
    }
    makeRoom(n) {
      if (this.end + n <= this.cap) return;
      const newest = this.end > this.start ? this.t[this.end - 1] : 0;
      let keep = this.start;
      while (keep < this.end && this.t[keep] < newest - KEEP_SECONDS) keep++;
      this.start = keep;
      if (this.end - this.start + n > this.cap / 2) {
        let cap = this.cap;
        while (this.end - this.start + n > cap / 2) cap *= 2;
        this.alloc(cap);
        return;
      }
      const len = this.end - this.start;
      this.base += this.start;
      this.t.copyWithin(0, this.start, this.end);
      this.seq.copyWithin(0, this.start, this.end);
      this.y.forEach((a) => a.copyWithin(0, this.start, this.end));
      this.start = 0;
      this.end = len;
    }
    // Parse a message's rows once: "<host time>,<device fields...>\n" per row.
    append(rows, n, arrived, decimation = 1) {
      this.makeRoom(n);
      const ncol = this.columns.length;
      let pos = 0;
      let i = this.end;
      const seqCol = this.seqIndex;
      const plotted = this.plotted;
      const fields = new Array(ncol + 1);
      while (pos < rows.length) {
        let nl = rows.indexOf("\n", pos);
        if (nl < 0) nl = rows.length;
        let f = 0;
        let p = pos;
        while (p <= nl && f <= ncol) {
          let c = rows.indexOf(",", p);
          if (c < 0 || c > nl) c = nl;
          fields[f++] = rows.substring(p, c);
          p = c + 1;
        }
        const line = pos;
        pos = nl + 1;
        if (f !== ncol + 1 || i >= this.cap) continue;
        const t = +fields[0];
        if (!(t > 0)) continue;
        this.lastRow = rows.substring(line, nl);
        this.t[i] = t;
        this.seq[i] = seqCol >= 0 ? +fields[seqCol + 1] : NaN;
        for (let k = 0; k < plotted.length; k++) this.y[k][i] = +fields[plotted[k] + 1];
        i++;
      }
      this.spread(this.end, i, decimation);
      this.end = i;
      this.newestArrived = arrived;
    }
    // Move the rows [from, to) from their chunks' receive times onto the display clock (see SPREAD_MAX).
    spread(from, to, k) {
      const t = this.t;
      let a = from;
      while (a < to) {
        const raw = t[a];
        let b = a + 1;
        while (b < to && t[b] === raw) b++;
        const m = b - a;
        const gap = raw - this.newestRaw;
        if (gap > 0 && gap <= SPREAD_MAX) {  // the period: time over rows, both averaged over recent chunks
          this.gapSum = DECAY * this.gapSum + gap;
          this.rowSum = DECAY * this.rowSum + m * k;  // k: the reader sent every k-th line
        }
        const p = this.rowSum > 0 ? (k * this.gapSum) / this.rowSum : 0;
        let x = a > this.start ? t[a - 1] : NaN;
        if (!(raw - x <= SPREAD_MAX) || !(p > 0)) {
          x = raw - m * p;  // the first rows, or after a pause: the chunk ends at its receive time
          for (let j = 0; j < m; j++) t[a + j] = x += p;
        } else {
          const catchUp = Math.min(0.75 * p, Math.max(-p / 2, (raw - x) / m - p));
          for (let j = 0; j < m; j++) t[a + j] = x += p + catchUp;
        }
        this.newestRaw = raw;
        a = b;
      }
    }
    newest() {
      const i = this.end - 1;
      if (i < this.start) return null;
      const values = {};
      this.plotted.forEach((c, k) => { values[this.columns[c]] = this.y[k][i]; });
      if (this.seqIndex >= 0) values.seq = this.seq[i];
      // The row exactly as received (host time, then the device's fields), for display and checks.
      const fields = this.lastRow.split(",");
      const text = {};
      this.columns.forEach((c, k) => { text[c] = fields[k + 1]; });
      return { time: this.newestRaw, seq: this.seqIndex >= 0 ? this.seq[i] : null, values, row: this.lastRow, text };
    }
    // First index with t >= from (binary search in the sorted live range).
    lowerBound(from) {
      let lo = this.start;
      let hi = this.end;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.t[mid] < from) lo = mid + 1; else hi = mid;
      }
      return lo;
    }
  }

  // Dense windows are reduced to each pixel column's min and max (in the order they occurred) before
  // uPlot sees them: the picture is the same, the canvas work no longer grows with the sample rate.
  // Columns are aligned to absolute time (no shimmer while scrolling) and kept between frames, so each
  // frame only folds in the samples that arrived since the last one.
  const DECIMATE_ABOVE = 3;  // points per pixel before decimating
  const COLUMN_PX = 2;       // pixels per min/max column
  class Decimated {
    constructor(series, dt) {
      this.s = series;
      this.dt = dt;
      this.nc = series.y.length;
      this.alloc(4096);
      this.n = 0;                 // committed points (2 per closed column)
      this.next = series.base + series.start;  // next absolute sample to fold in
      this.b = null;              // open column number
      this.mn = new Float64Array(this.nc);
      this.mx = new Float64Array(this.nc);
      this.imn = new Float64Array(this.nc);
      this.imx = new Float64Array(this.nc);
    }
    alloc(cap) {
      const x = this.x;
      const y = this.y;
      this.x = new Float64Array(cap);
      this.y = Array.from({ length: this.nc }, () => new Float64Array(cap));
      if (x) {
        this.x.set(x.subarray(0, this.n));
        this.y.forEach((a, c) => a.set(y[c].subarray(0, this.n)));
      }
      this.cap = cap;
    }
    open(a, i) {
      for (let c = 0; c < this.nc; c++) {
        this.mn[c] = this.mx[c] = this.s.y[c][i];
        this.imn[c] = this.imx[c] = a;
      }
    }
    write(at) {
      this.x[at] = this.b * this.dt;
      this.x[at + 1] = (this.b + 0.5) * this.dt;
      for (let c = 0; c < this.nc; c++) {
        const minFirst = this.imn[c] <= this.imx[c];
        this.y[c][at] = minFirst ? this.mn[c] : this.mx[c];
        this.y[c][at + 1] = minFirst ? this.mx[c] : this.mn[c];
      }
    }
    room() {
      if (this.n + 4 <= this.cap) return;
      const horizon = this.x[this.n - 1] - KEEP_SECONDS;
      let j = 0;
      while (j < this.n && this.x[j] < horizon) j += 2;
      if (this.n - j + 4 > this.cap / 2) {
        this.alloc(this.cap * 2);
        return;
      }
      this.x.copyWithin(0, j, this.n);
      this.y.forEach((a) => a.copyWithin(0, j, this.n));
      this.n -= j;
    }
    update() {
      const s = this.s;
      const ys = s.y;
      const from = Math.max(this.next, s.base + s.start);
      const to = s.base + s.end;
      for (let a = from; a < to; a++) {
        const i = a - s.base;
        const k = Math.floor(s.t[i] / this.dt);
        if (k !== this.b) {
          if (this.b !== null) {
            this.room();
            this.write(this.n);
            this.n += 2;
          }
          this.b = k;
          this.open(a, i);
          continue;
        }
        for (let c = 0; c < this.nc; c++) {
          const v = ys[c][i];
          if (v < this.mn[c]) { this.mn[c] = v; this.imn[c] = a; } else if (v > this.mx[c]) { this.mx[c] = v; this.imx[c] = a; }
        }
      }
      this.next = to;
    }
    // Columns from xmin on, with the still-open column last (written past the committed points).
    view(xmin) {
      this.room();
      this.write(this.n);
      const end = this.n + 2;
      let lo = 0;
      let hi = this.n >> 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.x[2 * mid] < xmin - this.dt) lo = mid + 1; else hi = mid;
      }
      const j = 2 * lo;
      return [this.x.subarray(j, end)].concat(this.y.map((a) => a.subarray(j, end)));
    }
  }

  window.sensorBuffers = { Series, Decimated, KEEP_SECONDS, DECIMATE_ABOVE, COLUMN_PX };
})();
