"""/metrics in-process: values from the published health documents and the hub, access rules, the spec table."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from kernel.frames import SAMPLES, STATUS
from kernel.status import (
    UPLOADER_NAME,
    QuotaStatus,
    ReaderStatus,
    UploaderProgress,
    quota_update,
    reader_status_name,
    write_status,
)
from web.hub import Hub, reset_hub
from web.metrics import COUNTER, METRICS

METRICS_TOKEN = "scrape-token-0123456789abcdef"


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir the app reads, login off, a known metrics token and box name, and a fresh hub."""
    cfg = dataclasses.replace(settings.SENSOR_WEB, data_dir=tmp_path, login_required=False,
                              metrics_token=METRICS_TOKEN, box_id="box7")
    with override_settings(SENSOR_WEB=cfg):
        reset_hub(None)
        yield tmp_path
    reset_hub(None)


def local() -> Client:
    """A test client addressing the app by an allowed host name."""
    return Client(SERVER_NAME="localhost")


def scrape(client: Client | None = None, **headers: str) -> tuple[int, dict[tuple[str, tuple], float]]:
    """GET /metrics; the status and the samples by (name, sorted labels)."""
    response = (client or local()).get("/metrics", headers=headers)
    if response.status_code != 200:
        return response.status_code, {}
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return response.status_code, samples


def publish_everything(data_dir: Path, hub: Hub) -> None:
    """A reader and an uploader status on disk; a device, a viewer and a dropped viewer in the hub."""
    write_status(data_dir, reader_status_name("sim0"), ReaderStatus(
        device="sim0", session="20261129T120000Z", connected=True, port="/dev/pts/3", recording=True,
        rate=1000.0, lines=5000, rejects=3, gaps=2, missing=7, frames_dropped=4, lost_lines=9,
        lost={"kill": 5, "offline": 4}, disk_error=None, time=time.time() - 1.0,
        clock={"rate_hz": 999.98, "drift_ppm": -20.0, "delay_ms": {"p50": 1.0, "p99": 12.0, "max": 30.0},
               "residual_us": {"p50": 10.0, "p99": 250.0, "max": 400.0}, "segments": 1, "ntp_at_start": True},
    ).to_dict())
    progress = UploaderProgress(state="idle", backlog_batches=2, backlog_bytes=2048, last_upload=time.time() - 30,
                                error=None, failures=0, uploaded_batches=11, uploaded_bytes=123456).to_dict()
    progress.update(quota_update(QuotaStatus(used_bytes=10, total_bytes=100, alarm=True, message="full")))
    write_status(data_dir, UPLOADER_NAME, {**progress, "updated": time.time()})
    hub.ingest_opened("sim0")
    hub.publish('{"type":"status"}', STATUS, "sim0")
    hub.publish('{"type":"samples"}', SAMPLES, "sim0")
    hub.publish('{"type":"samples"}', SAMPLES, "sim0")
    hub.subscribe("viewer")
    hub.drop(hub.subscribe("slow"))


def test_values_come_from_the_statuses_and_the_hub(data_dir: Path) -> None:
    hub = reset_hub(None)
    publish_everything(data_dir, hub)
    status, got = scrape()
    assert status == 200
    session = (("box", "box7"), ("device", "sim0"), ("session", "20261129T120000Z"))
    dev = (("box", "box7"), ("device", "sim0"))
    box = (("box", "box7"),)
    assert got[("sensor_reader_lines_total", session)] == 5000
    assert got[("sensor_reader_rejects_total", session)] == 3
    assert got[("sensor_reader_gaps_total", session)] == 2
    assert got[("sensor_reader_missing_lines_total", session)] == 7
    for cause, count in (("kill", 5), ("offline", 4)):
        assert got[("sensor_reader_lost_lines_total", tuple(sorted((*session, ("cause", cause)))))] == count
    assert got[("sensor_reader_frames_dropped_total", dev)] == 4
    assert got[("sensor_reader_connected", dev)] == 1
    assert got[("sensor_reader_line_rate", dev)] == 1000.0
    assert got[("sensor_reader_disk_error", dev)] == 0
    assert 0.5 < got[("sensor_reader_status_age_seconds", dev)] < 60
    assert got[("sensor_reader_clock_rate_hz", dev)] == 999.98
    assert got[("sensor_reader_clock_drift_ppm", dev)] == -20.0
    assert got[("sensor_reader_clock_delay_p99_seconds", dev)] == 0.012
    assert got[("sensor_reader_clock_residual_p99_seconds", dev)] == 0.00025
    assert got[("sensor_reader_clock_segments", dev)] == 1
    assert got[("sensor_reader_ntp_synchronized", dev)] == 1
    assert got[("sensor_uploader_backlog_batches", box)] == 2
    assert got[("sensor_uploader_backlog_bytes", box)] == 2048
    assert got[("sensor_uploader_uploaded_batches_total", box)] == 11
    assert got[("sensor_uploader_uploaded_bytes_total", box)] == 123456
    assert 29 < got[("sensor_uploader_last_upload_age_seconds", box)] < 90
    assert got[("sensor_uploader_state", (("box", "box7"), ("state", "idle")))] == 1
    assert got[("sensor_uploader_error", box)] == 0
    assert got[("sensor_quota_alarm", box)] == 1
    assert got[("sensor_quota_used_bytes", box)] == 10 and got[("sensor_quota_total_bytes", box)] == 100
    assert got[("sensor_disk_total_bytes", box)] > got[("sensor_disk_free_bytes", box)] > 0
    assert got[("sensor_web_viewers", box)] == 1
    assert got[("sensor_web_viewers_dropped_total", box)] == 1
    assert got[("sensor_web_messages_published_total", box)] == 3
    assert got[("sensor_web_frames_relayed_total", dev)] == 2
    assert got[("sensor_web_ingest_open", dev)] == 1

    # every metric of the table is exposed, with its type and labels, and nothing else
    exposed = {}
    for family in text_string_to_metric_families(local().get("/metrics").content.decode()):
        exposed[family.name + ("_total" if family.type == COUNTER else "")] = (
            family.type, {k for s in family.samples if s.name == family.name + ("_total" if family.type == COUNTER
                                                                                  else "") for k in s.labels})
    assert exposed == {m.name: (m.kind, set(m.labels)) for m in METRICS}


def test_a_box_with_no_services_yet_exposes_only_its_own_figures(data_dir: Path) -> None:
    status, got = scrape()
    assert status == 200
    names = {name for name, _ in got}
    assert "sensor_disk_free_bytes" in names and "sensor_web_viewers" in names
    assert not any(n.startswith(("sensor_reader_", "sensor_uploader_", "sensor_quota_")) for n in names)


def test_openmetrics_when_the_scraper_asks_for_it(data_dir: Path) -> None:
    response = local().get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().rstrip().endswith("# EOF")


def test_with_login_required_a_scrape_needs_the_token(data_dir: Path) -> None:
    cfg = dataclasses.replace(settings.SENSOR_WEB, login_required=True)
    with override_settings(SENSOR_WEB=cfg):
        response = local().get("/metrics")
        assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
        assert scrape(Authorization="Bearer wrong-token")[0] == 401
        assert scrape(Authorization=f"Basic {METRICS_TOKEN}")[0] == 401
        assert scrape(Authorization=f"Bearer {METRICS_TOKEN}")[0] == 200
    with override_settings(SENSOR_WEB=dataclasses.replace(cfg, metrics_token=None)):
        assert scrape(Authorization="Bearer ")[0] == 401  # no token configured: only logged-in sessions
    assert scrape()[0] == 200  # login off: open, like the dashboard


def test_with_login_required_a_logged_in_session_may_scrape(data_dir: Path) -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # the throwaway test database
    user, _ = User.objects.get_or_create(username="metrics-viewer")
    client = local()
    with override_settings(SENSOR_WEB=dataclasses.replace(settings.SENSOR_WEB, login_required=True)):
        assert client.get("/metrics").status_code == 401
        client.force_login(user)
        assert scrape(client)[0] == 200
