"""The manual's monitoring page, scrape example and Grafana dashboard agree with the metrics the code exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from web.metrics import METRICS, SPECS

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "monitoring.md"
GRAFANA = ROOT / "docs" / "monitoring" / "grafana-sensor-box.json"
SCRAPE_EXAMPLE = ROOT / "docs" / "monitoring" / "prometheus.yml"
METRIC_RE = re.compile(r"\bsensor_[a-z_]*[a-z]\b")
# What a fleet view must show (the lab's questions): each of these metrics is on some panel.
DASHBOARD_MUST_SHOW = (
    "sensor_reader_lines_total", "sensor_reader_rejects_total", "sensor_reader_gaps_total",
    "sensor_reader_lost_lines_total", "sensor_reader_frames_dropped_total", "sensor_reader_connected",
    "sensor_web_viewers", "sensor_uploader_backlog_batches", "sensor_uploader_backlog_bytes",
    "sensor_uploader_uploaded_bytes_total", "sensor_uploader_uploaded_batches_total",
    "sensor_uploader_last_upload_age_seconds", "sensor_disk_used_bytes", "sensor_quota_alarm",
)


def metric_table() -> str:
    """The page's table, as the code defines the metrics."""
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    rows += [f"| `{m.name}` | {m.kind} | {', '.join(f'`{label}`' for label in m.labels)} | {m.help} |"
             for m in METRICS]
    return "\n".join(rows)


def exprs(node: Any) -> list[str]:
    """Every ``expr`` in a Grafana dashboard document."""
    if isinstance(node, dict):
        return ([node["expr"]] if "expr" in node else []) + [e for v in node.values() for e in exprs(v)]
    if isinstance(node, list):
        return [e for v in node for e in exprs(v)]
    return []


def test_the_page_lists_exactly_the_metrics_of_the_code() -> None:
    text = PAGE.read_text()
    table = text.split("<!-- metrics -->\n", 1)[1].split("\n<!-- /metrics -->", 1)[0]
    assert table == metric_table(), "docs/monitoring.md's metric table is stale; it should read:\n" + metric_table()


def test_every_metric_the_page_names_exists() -> None:
    assert set(METRIC_RE.findall(PAGE.read_text())) - set(SPECS) == set()


def test_the_page_shows_the_scrape_example_file_as_it_is() -> None:
    assert f"```yaml\n{SCRAPE_EXAMPLE.read_text()}```" in PAGE.read_text()


def test_the_grafana_dashboard_queries_only_existing_metrics_and_shows_the_essentials() -> None:
    dashboard = json.loads(GRAFANA.read_text())
    queries = exprs(dashboard)
    named = {name for q in queries for name in METRIC_RE.findall(q)}
    assert named and named - set(SPECS) == set()
    assert [m for m in DASHBOARD_MUST_SHOW if m not in named] == []
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    assert all(p["targets"] and p["title"] for p in panels)
    assert any(v["name"] == "box" for v in dashboard["templating"]["list"])
