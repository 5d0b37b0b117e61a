"""A real Prometheus (Debian's package) scrapes a running box with the manual's scrape configuration.

The box: a simulated monitor on a pty, sensor-reader recording it, sensor-uploader shipping the batches to a
real S3 server, sensor-web with login required serving /metrics. Prometheus scrapes every second with the
bearer token; a second job without the token must be refused.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from simulator import Simulator
from tests.fixtures.s3 import S3Server
from tests.support import wait_for

from .conftest import REPO, VENV_BIN
from .servers import Process, Prometheus, running, service_env, start_reader

SCRAPE_EXAMPLE = REPO / "docs" / "monitoring" / "prometheus.yml"
GRAFANA = REPO / "docs" / "monitoring" / "grafana-sensor-box.json"
# Panels that stay empty on a healthy box: nothing lost.
EMPTY_WHEN_HEALTHY = ("sensor_reader_lost_lines_total",)
METRICS_TOKEN = "fleet-scrape-token-0123456789"
BOX = "box-test"


def scrape_config(folder: Path, target: str) -> dict[str, Any]:
    """The manual's example, pointed at this box and this folder, every second, plus a job without the token."""
    config = yaml.safe_load(SCRAPE_EXAMPLE.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s")
    folder.mkdir(parents=True, exist_ok=True)
    token_file = folder / "sensor-box.token"
    token_file.write_text(METRICS_TOKEN + "\n")
    (folder / "boxes").mkdir(parents=True)
    (folder / "boxes" / "lab.yml").write_text(yaml.safe_dump([{"targets": [target], "labels": {"room": "B12"}}]))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    box_job = jobs["sensor-box"]
    box_job["authorization"]["credentials_file"] = str(token_file)
    box_job["file_sd_configs"][0]["files"] = [str(folder / "boxes" / "*.yml")]
    jobs["sensor-box-node"]["file_sd_configs"][0]["files"] = [str(folder / "nodes" / "*.yml")]  # none here
    anonymous = {"job_name": "no-token", "metrics_path": box_job["metrics_path"],
                 "static_configs": [{"targets": [target]}]}
    config["scrape_configs"].append(anonymous)
    return config


def series(prometheus: Prometheus, query: str) -> list[dict[str, Any]]:
    """An instant query's result vector (or range vector for ``metric[5s]``)."""
    return prometheus.api("/api/v1/query", query=query)["result"]


def test_prometheus_scrapes_a_running_box_and_sees_the_counters_move(
        tmp_path: Path, web_server: Any, s3_server: S3Server, s3_bucket: str) -> None:
    server = web_server(SENSOR_WEB_LOGIN_REQUIRED="1", SENSOR_WEB_METRICS_TOKEN=METRICS_TOKEN, SENSOR_BOX_ID=BOX)
    sim = Simulator(tmp_path / "sim0", channels=4, rate=500.0, seq=True)
    sim.start()
    uploader_args = [str(VENV_BIN / "sensor-uploader"), "--foreground", "--data-dir", str(server.data_dir),
                     "--bucket", s3_bucket, "--endpoint-url", s3_server.endpoint_url, "--box-id", BOX,
                     "--interval", "0.5", "--quota-bytes", "1G"]
    try:
        with running(start_reader(sim.link, server.data_dir, server.ws_url, tmp_path / "reader.log")) as reader, \
                running(Process(uploader_args, tmp_path / "uploader.log", service_env(**s3_server.env()))) \
                as uploader, \
                running(Prometheus(scrape_config(tmp_path / "prometheus", f"127.0.0.1:{server.port}"),
                                   tmp_path / "prometheus")) as prometheus:
            try:
                check_scrapes(prometheus, server.url)
            finally:
                print(f"--- reader ---\n{reader.output()[-2000:]}\n--- uploader ---\n{uploader.output()[-2000:]}"
                      f"\n--- prometheus ---\n{prometheus.output()[-2000:]}\n--- web ---\n{server.output()[-2000:]}")
    finally:
        sim.stop()


def check_scrapes(prometheus: Prometheus, box_url: str) -> None:
    """Target up with the token, refused without it; the line counter grows between scrapes; uploads counted."""
    def health() -> dict[str, dict[str, Any]] | None:
        targets = prometheus.targets()
        ready = all(targets.get(job, {}).get("health") in ("up", "down") for job in ("sensor-box", "no-token"))
        return targets if ready else None

    targets = wait_for(health, 30, "both scrape jobs to have scraped once", interval=0.2)
    assert targets["sensor-box"]["health"] == "up", targets["sensor-box"]
    assert targets["no-token"]["health"] == "down"
    assert "401" in targets["no-token"]["lastError"], targets["no-token"]["lastError"]
    try:
        urllib.request.urlopen(box_url + "/metrics", timeout=10).close()
        raise AssertionError("an anonymous GET /metrics was served with login required")
    except urllib.error.HTTPError as err:
        assert err.code == 401

    # two scrapes of the reader's line counter, the second larger: the values move
    def grown() -> list[float] | None:
        found = series(prometheus, f'sensor_reader_lines_total{{job="sensor-box",box="{BOX}",room="B12"}}[10s]')
        values = [float(v) for s in found for _, v in s["values"]]
        return values if len(values) >= 2 and values[-1] > values[0] > 0 else None

    wait_for(grown, 30, "the reader's line counter to grow between two scrapes", interval=0.2)

    def uploaded() -> float | None:
        found = series(prometheus, f'sensor_uploader_uploaded_batches_total{{box="{BOX}"}}')
        return float(found[0]["value"][1]) if found and float(found[0]["value"][1]) > 0 else None

    wait_for(uploaded, 45, "uploaded batches to be counted", interval=0.2)
    for query, check in [
        ("sensor_reader_connected", lambda v: v == 1),
        ("sensor_reader_line_rate", lambda v: v > 100),
        ("sensor_uploader_uploaded_bytes_total", lambda v: v > 0),
        ("sensor_uploader_last_upload_age_seconds", lambda v: 0 <= v < 60),
        ("sensor_quota_alarm", lambda v: v == 0),
        ("sensor_quota_total_bytes", lambda v: v == 1 << 30),
        ("sensor_disk_free_bytes", lambda v: v > 0),
        ("sensor_web_frames_relayed_total", lambda v: v > 0),
        ("sensor_web_ingest_open", lambda v: v == 1),
        ('up{job="no-token"}', lambda v: v == 0),
    ]:
        found = series(prometheus, query)
        assert found, f"{query}: no series"
        value = float(found[0]["value"][1])
        assert check(value), f"{query} = {value}"
    check_grafana_queries(prometheus)


def grafana_queries() -> list[str]:
    """Every query of the manual's Grafana dashboard, with its variables filled in."""
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "expr" in node:
                yield node["expr"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    exprs = list(walk(json.loads(GRAFANA.read_text())))
    return [e.replace("$box", ".*").replace("$__rate_interval", "5s") for e in exprs]


def check_grafana_queries(prometheus: Prometheus) -> None:
    """The dashboard's queries are valid PromQL and, but for losses, show data for this box."""
    queries = grafana_queries()
    assert len(queries) >= 10
    empty = []
    for query in queries:
        try:
            found = series(prometheus, query)
        except urllib.error.HTTPError as err:
            raise AssertionError(f"Grafana query refused by Prometheus: {query}: {err.read()!r}") from err
        if not found:
            empty.append(query)
    assert [q for q in empty if not any(name in q for name in EMPTY_WHEN_HEALTHY)] == []
