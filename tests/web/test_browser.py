"""End to end in a real browser: simulator (pty) -> sensor-reader -> sensor-web (Daphne) -> dashboard page."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from kernel.status import write_status
from tests.support import stop_process

from .browser import chromium
from .conftest import REPO, TOKEN, VENV_BIN, require_assets, wait_for

ARTIFACTS = REPO / "test-artifacts"
CHANNELS = 4
SEQ_START = 1000  # the simulator's first sequence number: sent[seq - SEQ_START] is line seq


@pytest.fixture
def simulator(tmp_path: Path) -> Any:
    """A simulated monitor on a real pty: 4 channels + a sequence counter, 1000 lines/s."""
    from simulator import Simulator

    sim = Simulator(tmp_path / "sim0", channels=CHANNELS, rate=1000.0, seq=True, seq_start=SEQ_START)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def start_reader(tmp_path: Path, simulator: Any) -> Any:
    """Factory: a sensor-reader recording the simulator and streaming to the given sensor-web."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(server: Any) -> Path:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENSOR_")}
        env.update(SENSOR_INGEST_TOKEN=TOKEN, SENSOR_WS_URL=f"{server.ws_url}/ws/ingest/", PYTHONUNBUFFERED="1")
        log_path = tmp_path / "reader.log"
        with open(log_path, "wb") as log:
            procs.append(subprocess.Popen(
                [str(VENV_BIN / "sensor-reader"), "--port", str(simulator.link), "--data-dir",
                 str(server.data_dir), "--seq", "--batch-seconds", "5"], env=env, stdout=log,
                stderr=subprocess.STDOUT))
        return log_path

    yield start
    for proc in procs:
        stop_process(proc)


@pytest.fixture
def reader(web_server: Any, start_reader: Any) -> Any:
    """sensor-web (open display) fed by a sensor-reader recording the simulator."""
    server = web_server()
    return server, start_reader(server)


def stats(driver: Any) -> dict[str, Any]:
    """The page's window.__sensorStats (a copy without the latency log)."""
    return driver.execute_script("const s = {...window.__sensorStats}; delete s.log; return s;")


def text(driver: Any, element_id: str) -> str:
    """An element's visible text."""
    return driver.find_element("id", element_id).text


def test_dashboard_shows_what_the_simulator_sent_and_the_unplug(simulator: Any, reader: Any) -> None:
    require_assets()
    server, log_path = reader
    with chromium() as driver:
        driver.get(server.url + "/")
        try:
            latest = wait_for(lambda: stats(driver).get("latest"), 30, "samples drawn in the page")
            wait_for(lambda: text(driver, "device-state") == "connected", 15, "the panel to show 'connected'")
            wait_for(lambda: stats(driver)["fps"] > 5, 10, "the chart to be redrawn continuously")

            # service health published in <data dir>/.status reaches the panel within the health period
            write_status(server.data_dir, "uploader", {
                "state": "uploading", "backlog_batches": 3, "backlog_bytes": 2_500_000,
                "last_upload": time.time() - 120, "error": None,
                "quota": {"used_bytes": 96, "total_bytes": 100, "alarm": True, "message": "S3 quota 96% used"}})
            wait_for(lambda: text(driver, "alarm") == "S3 quota 96% used", 10, "the quota alarm line")
            assert text(driver, "st-backlog") == "3 batches, 2.5 MB"
            assert text(driver, "st-last-upload") == "2 min ago"
            wait_for(lambda: "reader-sim0: device connected" in text(driver, "st-services"), 10,
                     "the reader's published status")

            # values read back from the page equal the simulator's line with that sequence number
            for _ in range(3):
                latest = stats(driver)["latest"]
                seq = int(latest["seq"])
                sent = simulator.sent[seq - SEQ_START].split(",")
                assert latest["row"].split(",")[1:] == sent
                assert [latest["text"][f"ch{i}"] for i in range(1, CHANNELS + 1)] == sent[1:]
                time.sleep(0.2)  # let new lines arrive between the three checks (not synchronisation)

            # the visible per-channel values, frozen by Pause, match the simulator too
            driver.find_element("id", "pause-button").click()
            assert driver.find_element("id", "pause-button").text == "Resume"

            def shown() -> tuple[int, list[str]] | None:
                seq_text = text(driver, "latest-seq")
                cells = driver.find_elements("css selector", "#channels .value")
                frozen = stats(driver)["latest"]
                values = [c.text for c in cells]
                if seq_text != f"seq {int(frozen['seq'])}" or not all(values):
                    return None
                return int(frozen["seq"]), values
            seq, values = wait_for(shown, 10, "the paused values to be shown")
            assert values == simulator.sent[seq - SEQ_START].split(",")[1:]
            assert driver.find_element("css selector", "#channels label").text.startswith("ch1")
            assert text(driver, "st-rate").endswith("Hz")
            assert float(text(driver, "st-rate").split()[0]) == pytest.approx(1000, rel=0.25)
            assert "GB" in text(driver, "st-disk") or "MB" in text(driver, "st-disk")
            driver.find_element("id", "pause-button").click()

            # channel toggle: hiding ch2 unticks it; the chart keeps drawing
            box = driver.find_element("css selector", '#channels input[data-channel="ch2"]')
            box.click()
            assert not box.is_selected()
            frames = stats(driver)["frames"]
            wait_for(lambda: stats(driver)["frames"] > frames + 10, 10, "more frames drawn after the toggle")

            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "web-dashboard-connected.png"
            assert driver.save_screenshot(str(shot))

            lost = simulator.unplug()
            assert lost >= 0
            wait_for(lambda: text(driver, "device-state") == "disconnected", 15, "the panel to show 'disconnected'")
            assert driver.find_element("id", "device-state").get_attribute("data-connected") == "false"
            assert text(driver, "st-reader") == "waiting for the device"  # one state: never "recording" here
            assert driver.save_screenshot(str(ARTIFACTS / "web-dashboard-unplugged.png"))
            severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert severe == [], severe
        except BaseException:
            print(f"--- reader log ---\n{log_path.read_text(errors='replace')}\n--- web log ---\n{server.output()}")
            raise

    image = Image.open(shot)
    assert image.format == "PNG" and image.size[0] >= 800 and image.size[1] >= 400
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, "the screenshot is blank"
    # the waveform area is not empty: many non-background pixels in the chart's column range
    assert sum(n for n, rgb in colours if rgb not in ((255, 255, 255), (244, 246, 249))) > 20_000


def test_login_window_choice_and_reconnect_after_a_server_restart(simulator: Any, web_server: Any,
                                                                   start_reader: Any) -> None:
    require_assets()
    server = web_server(SENSOR_WEB_LOGIN_REQUIRED="1")
    made = subprocess.run([str(VENV_BIN / "sensor-web"), "createuser", "viewer", "--password-stdin"],
                          input="correct horse battery\n", env=server.env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    log_path = start_reader(server)
    with chromium() as driver:
        try:
            driver.get(server.url + "/")
            assert "/accounts/login/" in driver.current_url
            driver.find_element("name", "username").send_keys("viewer")
            driver.find_element("name", "password").send_keys("correct horse battery")
            driver.find_element("css selector", "form button[type=submit]").click()
            wait_for(lambda: driver.current_url == server.url + "/", 15, "the dashboard after logging in")
            wait_for(lambda: stats(driver).get("latest"), 30, "samples drawn in the page")

            # the window selector sets the chart's time span
            for seconds in ("2", "30", "5"):
                driver.find_element("css selector", f'#window-select option[value="{seconds}"]').click()
                wait_for(lambda s=seconds: _span(driver) == pytest.approx(float(s)), 10, f"a {seconds} s window")

            # a dense window is drawn from per-column min/max: fewer points, the same extremes
            driver.find_element("css selector", '#window-select option[value="30"]').click()
            wait_for(lambda: stats(driver).get("decimated") and _span(driver) == pytest.approx(30.0), 40,
                     "a 30 s window dense enough to be decimated")
            drawn, raw = driver.execute_script(EXTREMES)
            assert drawn["n"] < raw["n"] / 2
            assert drawn["min"] == raw["min"] and drawn["max"] == raw["max"]

            before = stats(driver)
            server.restart()  # same port, same database: the session cookie stays valid
            wait_for(lambda: stats(driver)["reconnects"] >= 1, 15, "the page to notice the restart")
            wait_for(lambda: text(driver, "conn-state") == "live", 30, "the page to reconnect")
            wait_for(lambda: stats(driver)["latest"]["seq"] > before["latest"]["seq"] + 200, 30,
                     "new samples after the reconnect (the reader reconnects too)")
            latest = stats(driver)["latest"]
            assert latest["row"].split(",")[1:] == simulator.sent[int(latest["seq"]) - SEQ_START].split(",")
        except BaseException:
            print(f"--- reader log ---\n{log_path.read_text(errors='replace')}\n--- web log ---\n{server.output()}")
            raise


# Extremes of ch1 as drawn (uPlot's data) and in the raw buffer from the first drawn column on.
EXTREMES = """
const u = window.__sensorDebug.chart(), s = window.__sensorDebug.series();
const xs = u.data[0], ys = u.data[1];
const last = s.t[s.end - 1];
const drawn = {n: xs.length, min: Math.min(...ys), max: Math.max(...ys)};
const raw = {n: 0, min: Infinity, max: -Infinity};
for (let i = s.start; i < s.end; i++) {
  if (s.t[i] < xs[0] || s.t[i] > last) continue;
  raw.n++; raw.min = Math.min(raw.min, s.y[0][i]); raw.max = Math.max(raw.max, s.y[0][i]);
}
return [drawn, raw];
"""


def _span(driver: Any) -> float | None:
    """Seconds spanned by the chart's x axis (None before the first draw)."""
    x = stats(driver).get("xRange")
    return None if not x else round(x[1] - x[0], 3)


def test_lost_lines_are_shown_by_cause(web_server: Any) -> None:
    """A reader's status with lines lost (by cause) reaches the panel through the real ingest websocket."""
    from websockets.sync.client import connect

    from kernel.frames import status_message

    require_assets()
    server = web_server()
    with connect(server.ws_url + "/ws/ingest/", additional_headers={"Authorization": f"Bearer {TOKEN}"},
                 open_timeout=10) as ingest, chromium() as driver:
        driver.get(server.url + "/")

        def shown() -> str:
            ingest.send(status_message(device="sim0", session="20261129T120000Z", connected=True, port="/dev/ttyUSB0",
                                       lines=5000, rejects=0, gaps=1, missing=12, lost_lines=12,
                                       lost={"disk_full": 10, "buffer_overflow": 2, "kill": 0}))
            return text(driver, "st-lost")

        assert wait_for(lambda: shown() == "12: disk full 10, buffer overflow 2", 20, "the lost lines in the panel",
                        interval=0.2)
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], severe
