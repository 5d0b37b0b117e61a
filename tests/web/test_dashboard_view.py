"""The dashboard in a real browser: a seamless join of backfill and live data, axis labels, the page layout.

A simulated monitor (8 channels × 1 kHz, with a sequence counter) on a pty → sensor-reader → sensor-web
(Daphne) → Debian's Chromium. Screenshots are kept in ``test-artifacts/``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .browser import chromium
from .conftest import REPO, TOKEN, VENV_BIN, WebServer, require_assets, wait_for

ARTIFACTS = REPO / "test-artifacts"
RATE = 1000.0
PERIOD = 1 / RATE
UNIT = "mV"


@pytest.fixture
def streaming(tmp_path: Path, web_server: Any) -> Iterator[WebServer]:
    """sensor-web fed by a sensor-reader (unit mV) recording a simulated 8 ch × 1 kHz monitor with a counter."""
    from simulator import Simulator

    server = web_server()
    sim = Simulator(tmp_path / "a-rather-long-port-link-name-for-the-monitor", channels=8, rate=RATE, seq=True)
    sim.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENSOR_")}
    env.update(SENSOR_INGEST_TOKEN=TOKEN, SENSOR_WS_URL=f"{server.ws_url}/ws/ingest/", SENSOR_UNIT=UNIT,
               PYTHONUNBUFFERED="1")
    log_path = tmp_path / "reader.log"
    with open(log_path, "wb") as log:
        reader = subprocess.Popen([str(VENV_BIN / "sensor-reader"), "--port", str(sim.link), "--data-dir",
                                   str(server.data_dir), "--seq", "--batch-seconds", "5"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        yield server
    except BaseException:
        print(f"--- reader log ---\n{log_path.read_text(errors='replace')}\n--- web log ---\n{server.output()}")
        raise
    finally:
        reader.terminate()
        assert reader.wait(timeout=15) == 0
        sim.stop()


def lines_streamed(server: WebServer) -> int:
    """Lines the reader has reported to the web app so far (its status API)."""
    with urllib.request.urlopen(server.url + "/api/status", timeout=5) as response:
        devices = json.load(response)["devices"]
    return max((int(d.get("lines") or 0) for d in devices.values() if d.get("source") == "stream"), default=0)


# Resolves once the drawn window holds at least 0.5 s on each side of the join of backfill and live data.
JOIN_DRAWN = """
const done = arguments[arguments.length - 1];
function poll() {
  const d = window.sensorDashboard.data();
  if (d && d.join && d.x.length && d.x[0] < d.join.t - 0.5 && d.x[d.x.length - 1] > d.join.t + 0.5) done(d);
  else requestAnimationFrame(poll);
}
poll();
"""


def test_backfill_and_live_data_join_without_a_gap(streaming: WebServer) -> None:
    require_assets()
    server = streaming
    wait_for(lambda: lines_streamed(server) >= 3000, 30, "3 s of lines to build up a backfill")
    with chromium() as driver:
        driver.set_window_size(1920, 1080)
        driver.get(server.url + "/")
        # a 2 s window is drawn point for point (no min/max decimation): the chart's arrays are the samples
        driver.find_element("css selector", '#window-select option[value="2"]').click()
        data = driver.execute_async_script(JOIN_DRAWN)

        x, seq = data["x"], data["seq"]
        assert not data["decimated"] and len(x) == len(seq) > 1000
        steps = [b - a for a, b in itertools.pairwise(x)]
        worst = max(range(len(steps)), key=steps.__getitem__)
        assert min(steps) > 0, "the drawn times go backwards"
        assert steps[worst] <= 2 * PERIOD, (
            f"a {steps[worst] * 1000:.1f} ms straight line at {x[worst]:.3f} (join at {data['join']['t']:.3f})")
        assert [b - a for a, b in itertools.pairwise(seq)] == [1] * (len(seq) - 1), "lines missing"
        assert driver.execute_script("return window.sensorDashboard.dropped()") == 0
        assert not driver.find_element("id", "drops-row").is_displayed()

        # the whole buffer (backfill and live) holds every line once, in order
        whole = driver.execute_script(
            "const s = window.__sensorDebug.series(); return Array.from(s.seq.subarray(s.start, s.end));")
        assert whole == list(range(int(whole[0]), int(whole[0]) + len(whole)))

        # axes: the value axis names the reader's unit, times are ISO 8601 / 24-hour UTC
        assert driver.execute_script("return window.sensorDashboard.labels()") == ["time (UTC)", UNIT]
        ticks = driver.execute_script(
            "const u = window.__sensorDebug.chart(); return u.axes[0].values(u, [1795971599.25, 1795971599.5], 0, 80,"
            " 0.25);")
        assert ticks == ["16:59:59.25\n2026-11-29", "16:59:59.50"]
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "web-dashboard-seam.png"))
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], severe


# Geometry of the page: the chart's box, the viewport, anything wider than the viewport, the clipped values.
GEOMETRY = """
const box = (el) => el.getBoundingClientRect();
const vw = document.documentElement.clientWidth;
const wide = [...document.querySelectorAll("body *")].filter((el) => box(el).right > vw + 1 && el.offsetParent)
  .map((el) => el.id || el.className || el.tagName);
const clip = (id) => { const el = document.getElementById(id), st = getComputedStyle(el);
  return {title: el.title, text: el.textContent, height: box(el).height, line: parseFloat(st.lineHeight)}; };
const u = window.__sensorDebug.chart();
return {vw, vh: window.innerHeight, scrollWidth: document.documentElement.scrollWidth, wide,
        chart: box(document.getElementById("chart")), canvas: {width: u.width, height: u.height},
        status: box(document.querySelector(".status")), port: clip("st-port"), session: clip("st-session")};
"""


@pytest.mark.parametrize("size", [(1920, 1080), (390, 844)], ids=["desktop", "phone"])
def test_layout_uses_the_page_on_desktop_and_phone(streaming: WebServer, size: tuple[int, int]) -> None:
    require_assets()
    server = streaming
    with chromium() as driver:
        driver.set_window_size(*size)
        driver.get(server.url + "/")
        wait_for(lambda: driver.execute_script("return window.__sensorStats.latest"), 30, "samples drawn")
        wait_for(lambda: driver.find_element("id", "st-session").text not in ("", "–"), 15, "the session shown")
        g = driver.execute_script(GEOMETRY)
        assert g["scrollWidth"] <= g["vw"] and g["wide"] == [], f"wider than the page: {g['wide']}"
        assert g["chart"]["height"] > 0.6 * g["vh"], g
        # the chart's canvas follows its box (resized with the page, not a fixed height)
        assert abs(g["canvas"]["height"] - g["chart"]["height"]) < 40 and g["canvas"]["width"] > 0.8 * g["chart"]["width"]
        for value in (g["port"], g["session"]):  # one line, cut with an ellipsis, the whole value as tooltip
            assert value["title"] == value["text"] and value["text"] not in ("", "–")
            assert value["height"] < 1.5 * value["line"], value
        assert g["port"]["text"].endswith("a-rather-long-port-link-name-for-the-monitor")
        assert re.fullmatch(r"\d{8}T\d{6}Z", g["session"]["text"])
        if size[0] < 900:  # phone: the status comes below the chart
            assert g["status"]["top"] >= g["chart"]["bottom"]
        else:  # desktop: beside it
            assert g["status"]["left"] >= g["chart"]["right"]
        assert driver.find_element("id", "conn-state").text == "live"
        assert driver.find_element("id", "device-state").text == "connected"
        assert driver.find_element("id", "st-reader").text == "recording"
        ARTIFACTS.mkdir(exist_ok=True)
        name = "desktop" if size[0] >= 900 else "phone"
        assert driver.save_screenshot(str(ARTIFACTS / f"web-dashboard-layout-{name}.png"))
