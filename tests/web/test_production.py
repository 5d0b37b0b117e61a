"""Production mode through a real sensor-web (Daphne) subprocess: static files, no debug pages, headers, login."""

from __future__ import annotations

import http.cookiejar
import json
import re
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from reader.frames import samples_message, status_message

from .conftest import TOKEN, VENV_BIN, require_assets, server_env


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Let 3xx responses through as they are."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch(url: str, opener: urllib.request.OpenerDirector | None = None, data: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET (or POST with data) without following redirects; returns status, headers, body."""
    opener = opener or urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_production_mode_serves_static_hides_debug_and_sets_headers(web_server: Any) -> None:
    require_assets()
    server = web_server()
    status, headers, body = fetch(server.url + "/")
    assert status == 200
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    page = body.decode()
    scripts = re.findall(r'src="([^"]+)"', page)
    assert scripts == ["/static/vendor/uplot/uPlot.iife.min.js", "/static/web/buffers.js",
                       "/static/web/dashboard.js"]

    for path, kind in [("/static/vendor/uplot/uPlot.iife.min.js", "javascript"),
                       ("/static/vendor/uplot/uPlot.min.css", "text/css"),
                       ("/static/web/dashboard.js", "javascript"),
                       ("/static/web/buffers.js", "javascript"),
                       ("/static/admin/css/base.css", "text/css")]:
        status, headers, body = fetch(server.url + path)
        assert status == 200, path
        assert kind in headers["Content-Type"], (path, headers["Content-Type"])
        assert len(body) > 100
    assert b"uPlot" in fetch(server.url + "/static/vendor/uplot/uPlot.iife.min.js")[2]

    status, _, body = fetch(server.url + "/no/such/page")
    assert status == 404
    assert b"Traceback" not in body and b"URLconf" not in body and b"DEBUG" not in body
    assert fetch(server.url + "/static/../settings.py")[0] == 404
    assert fetch(server.url + "/static/web/missing.js")[0] == 404

    status, headers, _ = fetch(server.url + "/admin/")
    assert status == 302 and "/admin/login/" in headers["Location"]
    # an unknown Host header is refused (ALLOWED_HOSTS), without a debug page
    status, _, body = fetch(server.url + "/", headers={"Host": "evil.example"})
    assert status == 400 and b"Traceback" not in body


def test_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    del env["SENSOR_WEB_SECRET_KEY"]
    proc = subprocess.run([str(VENV_BIN / "sensor-web"), "--port", "1"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "no secret key" in proc.stderr and "SENSOR_WEB_SECRET_KEY_FILE" in proc.stderr


def test_secret_key_file_is_used(tmp_path: Path, web_server: Any) -> None:
    key_file = tmp_path / "secret"
    key_file.write_text("f" * 60 + "\n")
    server = web_server(SENSOR_WEB_SECRET_KEY="", SENSOR_WEB_SECRET_KEY_FILE=str(key_file))
    assert fetch(server.url + "/")[0] == 200


def test_login_required_for_page_api_and_live_stream(web_server: Any) -> None:
    server = web_server(SENSOR_WEB_LOGIN_REQUIRED="1")
    status, headers, _ = fetch(server.url + "/")
    assert status == 302 and headers["Location"].startswith("/accounts/login/?next=/")
    assert fetch(server.url + "/api/status")[0] == 302
    with pytest.raises(InvalidStatus) as refused:
        connect(server.ws_url + "/ws/live/", origin=server.url, open_timeout=10).close()
    assert refused.value.response.status_code == 403

    made = subprocess.run([str(VENV_BIN / "sensor-web"), "createuser", "viewer", "--password-stdin"],
                          input="correct horse battery\n", env=server.env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    assert "created user viewer" in made.stdout

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(jar))
    status, _, body = fetch(server.url + "/accounts/login/", opener)
    assert status == 200
    csrf = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    bad = urllib.parse.urlencode({"username": "viewer", "password": "nope", "csrfmiddlewaretoken": csrf})
    assert fetch(server.url + "/accounts/login/", opener, bad.encode(), {"Referer": server.url + "/"})[0] == 200
    good = urllib.parse.urlencode({"username": "viewer", "password": "correct horse battery",
                                   "csrfmiddlewaretoken": csrf, "next": "/"})
    status, headers, _ = fetch(server.url + "/accounts/login/", opener, good.encode(),
                               {"Referer": server.url + "/accounts/login/"})
    assert status == 302 and headers["Location"] == "/"
    assert fetch(server.url + "/", opener)[0] == 200
    assert "sessionid" in {c.name for c in jar}

    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    with connect(server.ws_url + "/ws/live/", origin=server.url, additional_headers={"Cookie": cookie},
                 open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "health"


def test_ingest_through_daphne_reaches_a_viewer(web_server: Any) -> None:
    server = web_server()
    with pytest.raises(InvalidStatus) as refused:
        connect(server.ws_url + "/ws/ingest/", additional_headers={"Authorization": "Bearer wrong"},
                open_timeout=10).close()
    assert refused.value.response.status_code == 403
    assert "refused: wrong token" in server.output()

    rows = b"1764061139.000000,1,0.5\n1764061139.001000,2,0.25\n"
    sample = samples_message("sim0", "s1", 1, ["seq", "ch1"], rows, 2, 1)
    state = status_message(device="sim0", session="s1", connected=True, rate=1000.0)
    with connect(server.ws_url + "/ws/live/", origin=server.url, open_timeout=10) as live, \
            connect(server.ws_url + "/ws/ingest/", additional_headers={"Authorization": f"Bearer {TOKEN}"},
                    open_timeout=10) as source:
        source.send(state)
        source.send(sample)
        got = []
        while len(got) < 2:
            text = live.recv(timeout=10)
            if json.loads(text)["type"] != "health":
                got.append(text)
    assert got == [state, sample]
    status, _, body = fetch(server.url + "/api/status")
    assert status == 200
    assert json.loads(body)["devices"]["sim0"]["rate"] == 1000.0


def test_systemd_ready_and_watchdog_notifications(web_server: Any) -> None:
    folder = Path(tempfile.mkdtemp(prefix="sw-notify-", dir="/tmp"))
    path = folder / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(10)
        web_server(NOTIFY_SOCKET=str(path), WATCHDOG_USEC="200000")
        got = [sock.recv(256).decode() for _ in range(3)]
    shutil.rmtree(folder, ignore_errors=True)
    assert got[0] == "READY=1"
    assert got[1:] == ["WATCHDOG=1", "WATCHDOG=1"]
