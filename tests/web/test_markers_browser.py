"""Markers end to end: a click in the dashboard -> markers.jsonl in the session -> S3 with the session ->
``sensor-analysis markers`` and ``plot`` from S3.

Simulator (pty) -> sensor-reader -> sensor-web (Daphne) -> Chromium; then sensor-uploader --once to a real S3
server (rclone) and the analysis CLI reading it back.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.keys import Keys

from analysis.cli import main as analysis_main
from kernel.layout import session_dirs
from kernel.manifest import SessionManifest
from kernel.markers import SOURCE_DASHBOARD, read_markers
from tests.analysis.uploads import upload
from tests.fixtures.s3 import running_s3
from tests.support import stop_process

from .browser import chromium
from .conftest import REPO, TOKEN, VENV_BIN, require_assets, wait_for

LABEL = "stimulus on"


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Any]:
    """A simulated monitor on a real pty: 2 channels and a counter at 500 lines/s."""
    from simulator import Simulator

    sim = Simulator(tmp_path / "sim0", channels=2, rate=500.0, seq=True)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def recorder(tmp_path: Path, web_server: Any, simulator: Any) -> Iterator[tuple[Any, Path]]:
    """sensor-web (open display) and a sensor-reader recording the simulator and streaming to it."""
    server = web_server()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENSOR_")}
    env.update(SENSOR_INGEST_TOKEN=TOKEN, SENSOR_WS_URL=f"{server.ws_url}/ws/ingest/", PYTHONUNBUFFERED="1")
    log_path = tmp_path / "reader.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(VENV_BIN / "sensor-reader"), "--port", str(simulator.link), "--data-dir",
                                 str(server.data_dir), "--seq", "--batch-seconds", "1"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        yield server, log_path
    finally:
        stop_process(proc)


def page(driver: Any, script: str) -> Any:
    """Evaluate an expression in the page."""
    return driver.execute_script(f"return {script};")


def test_a_marker_from_the_dashboard_reaches_the_analysis_through_s3(
    tmp_path: Path, recorder: tuple[Any, Path], simulator: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_assets()
    server, log_path = recorder
    try:
        with chromium() as driver:
            driver.get(server.url + "/")
            wait_for(lambda: page(driver, "window.__sensorStats.latest"), 30, "samples drawn in the page")
            wait_for(lambda: driver.find_element("id", "st-reader").text == "recording", 10, "a recording session")

            # the keyboard shortcut opens the inline form; Escape closes it again
            driver.find_element("tag name", "body").send_keys("m")
            label_input = driver.find_element("id", "marker-label")
            assert label_input.is_displayed() and driver.switch_to.active_element == label_input
            label_input.send_keys(Keys.ESCAPE)
            assert not driver.find_element("id", "marker-form").is_displayed()

            # the button, a label typed, Enter
            driver.find_element("id", "marker-button").click()
            label_input.send_keys(LABEL, Keys.ENTER)
            wait_for(lambda: LABEL in driver.find_element("id", "marker-list").text, 10, "the marker in the list")
            wait_for(lambda: page(driver, "window.sensorMarkers.state.drawn").count(LABEL) == 1, 10,
                     "the marker drawn on the chart")
            assert not driver.find_element("id", "marker-form").is_displayed()
            marker_t = page(driver, "window.sensorMarkers.markers()[0].t")
            wait_for(lambda: page(driver, "window.__sensorStats.latest.time") > marker_t + 1.0, 15,
                     "a second of samples after the marker")
            severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert severe == [], severe
            (REPO / "test-artifacts").mkdir(exist_ok=True)
            assert driver.save_screenshot(str(REPO / "test-artifacts" / "web-dashboard-marker.png"))

        (session,) = list(session_dirs(server.data_dir))
        (marker,) = read_markers(session)
        assert marker.label == LABEL and marker.source == SOURCE_DASHBOARD and marker.user is None

        simulator.unplug()  # the reader closes the session
        wait_for(lambda: SessionManifest.load(session).closed, 15, "the session to close")
    except BaseException:
        print(f"--- reader log ---\n{log_path.read_text(errors='replace')}\n--- web log ---\n{server.output()}")
        raise

    with running_s3(tmp_path / "s3") as s3:
        bucket = s3.create_bucket()
        (url,) = upload(s3, bucket, [session], tmp_path, prefix="lab", box="box1", form="parquet")
        assert f"lab/box1/sim0/{session.name}/markers.jsonl" in s3.objects(bucket)
        for name, value in s3.env().items():
            monkeypatch.setenv(name, value)
        endpoint = ("--endpoint-url", s3.endpoint_url)

        assert analysis_main(["markers", url, *endpoint]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 2 and lines[1].split()[:4] == [marker.time, "stimulus", "on", "dashboard"]

        figure = tmp_path / "session.svg"
        assert analysis_main(["plot", url, *endpoint, "--out", str(figure), "--width", "800", "--height", "400"]) == 0
        assert f"<!--  {LABEL} -->" in figure.read_text() and 'id="marker-label-0"' in figure.read_text()

        window = tmp_path / "window.svg"
        assert analysis_main(["plot", url, *endpoint, "--start", f"marker:{LABEL}", "--duration", "0.5s",
                              "--out", str(window), "--width", "800", "--height", "400"]) == 0
        assert f"<!--  {LABEL} -->" in window.read_text()
