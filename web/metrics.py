"""Prometheus metrics of the box, built at scrape time from the services' health documents and this process.

One scrape target per box: the readers' and the uploader's counters come from what they publish in
``<data dir>/.status/`` (kernel.status), disk use from the data directory's file system, the fan-out
counters from this process's hub. Every metric carries the label ``box``; reader metrics also ``device``,
and the per-session counters ``session`` (each recording restarts its counts, so each session is its own
monotonic series). Metrics of a service that has published nothing yet are absent, not zero.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kernel.manifest import LOST_BUFFER, LOST_DISK_ERROR, LOST_DISK_FULL, LOST_KILL, LOST_OFFLINE
from kernel.status import (
    ReaderStatus,
    UploaderStatus,
    read_statuses,
    reader_statuses,
    uploader_status,
)
from web.hub import Hub

COUNTER, GAUGE = "counter", "gauge"
BOX = ("box",)
DEVICE = ("box", "device")
SESSION = ("box", "device", "session")
LOST_CAUSES = (LOST_DISK_FULL, LOST_DISK_ERROR, LOST_BUFFER, LOST_KILL, LOST_OFFLINE)


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One exposed metric: its name as scraped, type, labels and meaning (the manual's table is checked
    against these)."""

    name: str
    kind: str
    labels: tuple[str, ...]
    help: str

    def family(self) -> CounterMetricFamily | GaugeMetricFamily:
        """An empty family to add samples to."""
        if self.kind == COUNTER:
            return CounterMetricFamily(self.name.removesuffix("_total"), self.help, labels=self.labels)
        return GaugeMetricFamily(self.name, self.help, labels=self.labels)


METRICS = tuple(MetricSpec(*row) for row in (
    # readers, from .status/reader-<device>.json
    ("sensor_reader_lines_total", COUNTER, SESSION, "lines recorded in the session"),
    ("sensor_reader_rejects_total", COUNTER, SESSION, "lines rejected by the parser in the session"),
    ("sensor_reader_gaps_total", COUNTER, SESSION, "gaps in the device's sequence counter in the session"),
    ("sensor_reader_missing_lines_total", COUNTER, SESSION, "lines missing in those gaps"),
    ("sensor_reader_lost_lines_total", COUNTER, SESSION + ("cause",),
     f"lines read but not kept, by cause ({', '.join(LOST_CAUSES)})"),
    ("sensor_reader_frames_dropped_total", COUNTER, DEVICE,
     "live frames the reader dropped (the stream is best-effort) since it started"),
    ("sensor_reader_connected", GAUGE, DEVICE, "1 while the device is connected"),
    ("sensor_reader_recording", GAUGE, DEVICE, "1 when the reader writes to disk"),
    ("sensor_reader_line_rate", GAUGE, DEVICE, "lines per second over the last second"),
    ("sensor_reader_disk_error", GAUGE, DEVICE, "1 while the reader cannot write to disk"),
    ("sensor_reader_clock_rate_hz", GAUGE, DEVICE, "the device's sample rate as the sample clock models it"),
    ("sensor_reader_clock_drift_ppm", GAUGE, DEVICE, "modelled rate against the configured one, parts per million"),
    ("sensor_reader_clock_delay_p99_seconds", GAUGE, DEVICE,
     "99th percentile of how far reads arrive behind the modelled sample times (host scheduling and USB latency)"),
    ("sensor_reader_clock_residual_p99_seconds", GAUGE, DEVICE,
     "99th percentile of the earliest arrivals' distance from the fitted line (the model's own error)"),
    ("sensor_reader_clock_segments", GAUGE, DEVICE, "stretches of one device clock in the session (1 + restarts)"),
    ("sensor_reader_ntp_synchronized", GAUGE, DEVICE, "1 when the host clock was NTP-synchronised at session start"),
    ("sensor_reader_status_age_seconds", GAUGE, DEVICE,
     "seconds since the reader last published its status (it does every second while running)"),
    # uploader, from .status/uploader.json
    ("sensor_uploader_backlog_batches", GAUGE, BOX, "committed batches not uploaded yet"),
    ("sensor_uploader_backlog_bytes", GAUGE, BOX, "their bytes"),
    ("sensor_uploader_uploaded_batches_total", COUNTER, BOX, "batches uploaded since the uploader started"),
    ("sensor_uploader_uploaded_bytes_total", COUNTER, BOX, "bytes uploaded since the uploader started"),
    ("sensor_uploader_last_upload_timestamp_seconds", GAUGE, BOX, "Unix time of the last verified upload"),
    ("sensor_uploader_last_upload_age_seconds", GAUGE, BOX, "seconds since the last verified upload"),
    ("sensor_uploader_failures", GAUGE, BOX, "consecutive failed attempts (0 when uploads succeed)"),
    ("sensor_uploader_error", GAUGE, BOX, "1 while the uploader reports an error"),
    ("sensor_uploader_state", GAUGE, BOX + ("state",),
     "1 for the uploader's current state (starting, idle, uploading, outage, error, stopped)"),
    ("sensor_uploader_status_age_seconds", GAUGE, BOX, "seconds since the uploader last published its status"),
    ("sensor_quota_used_bytes", GAUGE, BOX, "bytes the quota counts as used"),
    ("sensor_quota_total_bytes", GAUGE, BOX, "bytes the quota allows"),
    ("sensor_quota_alarm", GAUGE, BOX, "1 while the disk-quota alarm is raised"),
    # the data directory's file system, measured at scrape time
    ("sensor_disk_total_bytes", GAUGE, BOX, "size of the file system holding the data directory"),
    ("sensor_disk_used_bytes", GAUGE, BOX, "bytes used on it"),
    ("sensor_disk_free_bytes", GAUGE, BOX, "bytes free on it"),
    # this sensor-web process
    ("sensor_web_viewers", GAUGE, BOX, "dashboards connected to this process"),
    ("sensor_web_messages_published_total", COUNTER, BOX, "stream messages fanned out by this process"),
    ("sensor_web_frames_relayed_total", COUNTER, DEVICE, "sample frames of the device fanned out"),
    ("sensor_web_messages_dropped_total", COUNTER, BOX,
     "messages thrown away with viewers dropped for being too far behind"),
    ("sensor_web_viewers_dropped_total", COUNTER, BOX, "viewers dropped for being too far behind"),
    ("sensor_web_ingest_open", GAUGE, DEVICE, "1 while a reader's ingest connection carries the device"),
))
SPECS = {spec.name: spec for spec in METRICS}


class _Families:
    """The families of one scrape, created on first use so that absent services expose nothing."""

    def __init__(self, box: str) -> None:
        self.box = box
        self.families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}

    def add(self, name: str, value: float | None, *labels: str) -> None:
        """Add a sample (labels after ``box``); a missing value adds nothing."""
        if value is None:
            return
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = SPECS[name].family()
        family.add_metric([self.box, *labels], float(value))

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.families.values())


def _readers(out: _Families, readers: dict[str, ReaderStatus], now: float) -> None:
    for device, st in readers.items():
        session = (device, st.session)
        out.add("sensor_reader_lines_total", st.lines, *session)
        out.add("sensor_reader_rejects_total", st.rejects, *session)
        out.add("sensor_reader_gaps_total", st.gaps, *session)
        out.add("sensor_reader_missing_lines_total", st.missing, *session)
        for cause, count in sorted(st.lost.items()):
            out.add("sensor_reader_lost_lines_total", count, *session, str(cause))
        out.add("sensor_reader_frames_dropped_total", st.frames_dropped, device)
        out.add("sensor_reader_connected", st.connected, device)
        out.add("sensor_reader_recording", st.recording, device)
        out.add("sensor_reader_line_rate", st.rate, device)
        out.add("sensor_reader_disk_error", bool(st.disk_error), device)
        out.add("sensor_reader_status_age_seconds", max(0.0, now - st.time) if st.time else None, device)
        _clock(out, st.clock, device)


def _clock(out: _Families, clock: dict[str, Any], device: str) -> None:
    """The sample clock's quality (absent before the reader has a model)."""
    if not clock:
        return
    delay, residual = clock.get("delay_ms") or {}, clock.get("residual_us") or {}
    out.add("sensor_reader_clock_rate_hz", clock.get("rate_hz"), device)
    out.add("sensor_reader_clock_drift_ppm", clock.get("drift_ppm"), device)
    p99 = delay.get("p99")
    out.add("sensor_reader_clock_delay_p99_seconds", None if p99 is None else p99 / 1e3, device)
    p99 = residual.get("p99")
    out.add("sensor_reader_clock_residual_p99_seconds", None if p99 is None else p99 / 1e6, device)
    out.add("sensor_reader_clock_segments", clock.get("segments"), device)
    ntp = clock.get("ntp_at_start")
    out.add("sensor_reader_ntp_synchronized", None if ntp is None else bool(ntp), device)


def _uploader(out: _Families, st: UploaderStatus | None, now: float) -> None:
    if st is None:
        return
    out.add("sensor_uploader_backlog_batches", st.backlog_batches)
    out.add("sensor_uploader_backlog_bytes", st.backlog_bytes)
    out.add("sensor_uploader_uploaded_batches_total", st.uploaded_batches)
    out.add("sensor_uploader_uploaded_bytes_total", st.uploaded_bytes)
    out.add("sensor_uploader_last_upload_timestamp_seconds", st.last_upload)
    out.add("sensor_uploader_last_upload_age_seconds", max(0.0, now - st.last_upload) if st.last_upload else None)
    out.add("sensor_uploader_failures", st.failures)
    if st.state is not None:
        out.add("sensor_uploader_error", bool(st.error))
        out.add("sensor_uploader_state", 1, str(st.state))
    out.add("sensor_uploader_status_age_seconds", max(0.0, now - st.updated) if st.updated else None)
    if st.quota is not None:
        out.add("sensor_quota_used_bytes", st.quota.used_bytes)
        out.add("sensor_quota_total_bytes", st.quota.total_bytes)
        out.add("sensor_quota_alarm", st.quota.alarm)


def _disk(out: _Families, data_dir: Path) -> None:
    try:
        usage = shutil.disk_usage(data_dir)
    except OSError:
        return
    out.add("sensor_disk_total_bytes", usage.total)
    out.add("sensor_disk_used_bytes", usage.used)
    out.add("sensor_disk_free_bytes", usage.free)


def _web(out: _Families, hub: Hub) -> None:
    out.add("sensor_web_viewers", len(hub.viewers))
    out.add("sensor_web_messages_published_total", hub.published)
    out.add("sensor_web_messages_dropped_total", hub.dropped)
    out.add("sensor_web_viewers_dropped_total", hub.viewers_dropped)
    for device, state in sorted(hub.devices.items()):
        out.add("sensor_web_frames_relayed_total", state.frames, device)
        out.add("sensor_web_ingest_open", state.ingest_open > 0, device)


class BoxCollector(Collector):
    """Everything above, read afresh at every scrape."""

    def __init__(self, data_dir: Path, box: str, hub: Callable[[], Hub],
                 clock: Callable[[], float] = time.time) -> None:
        self.data_dir = data_dir
        self.box = box
        self.hub = hub
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        """The families of one scrape."""
        out = _Families(self.box)
        now = self.clock()
        files = read_statuses(self.data_dir)
        _readers(out, reader_statuses(files), now)
        _uploader(out, uploader_status(files), now)
        _disk(out, self.data_dir)
        _web(out, self.hub())
        return list(out)
