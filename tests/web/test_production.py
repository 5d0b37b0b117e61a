"""Production mode through a real sensor-web (Daphne) subprocess: static files, no debug pages, headers, login."""

from __future__ import annotations

import base64
import http.cookiejar
import json
import os
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

from kernel.frames import samples_message, status_message

from .conftest import TOKEN, VENV_BIN, free_port, require_assets, server_env, wait_for


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
    # Plain HTTP on a lab address is no trustworthy origin: browsers reject COOP there with a console error.
    assert "Cross-Origin-Opener-Policy" not in headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    page = body.decode()
    scripts = re.findall(r'src="([^"]+)"', page)
    assert scripts == ["/static/vendor/uplot/uPlot.iife.min.js", "/static/web/buffers.js",
                       "/static/web/markers.js", "/static/web/dashboard.js"]

    for path, kind in [("/static/vendor/uplot/uPlot.iife.min.js", "javascript"),
                       ("/static/vendor/uplot/uPlot.min.css", "text/css"),
                       ("/static/web/dashboard.js", "javascript"),
                       ("/static/web/buffers.js", "javascript"),
                       ("/static/web/markers.js", "javascript"),
                       ("/static/web/markers.css", "text/css"),
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


def test_csp_lets_the_page_connect_only_to_its_own_origin(web_server: Any) -> None:
    server = web_server()
    policy = fetch(server.url + "/")[1]["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives["connect-src"] == ["'self'"]  # CSP 3: 'self' covers ws(s):// to the same host and port


HTTPS_ENV = {"SENSOR_WEB_HTTPS": "1", "SENSOR_WEB_ALLOWED_HOSTS": "box.lab",
             "SENSOR_WEB_CSRF_TRUSTED_ORIGINS": "https://box.lab"}


def test_deploy_check_is_clean_with_the_https_settings(tmp_path: Path) -> None:
    env = server_env(tmp_path, **HTTPS_ENV)
    proc = subprocess.run([str(VENV_BIN / "sensor-web"), "manage", "check", "--deploy", "--fail-level", "WARNING"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout


def test_behind_a_tls_front_plain_http_is_redirected_and_https_gets_hsts(web_server: Any) -> None:
    server = web_server(**{**HTTPS_ENV, "SENSOR_WEB_ALLOWED_HOSTS": "127.0.0.1"})
    status, headers, _ = fetch(server.url + "/")
    assert status == 301 and headers["Location"].startswith("https://127.0.0.1")
    status, headers, _ = fetch(server.url + "/", headers={"X-Forwarded-Proto": "https"})
    assert status == 200
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.parametrize(("bind", "expected"), [
    ("127.0.0.1", "dashboard at http://127.0.0.1:{port}/"),
    ("0.0.0.0", ("listening on all addresses (0.0.0.0) port {port}: dashboard at http://{host}:{port}/ "
                "(or any address of this machine)")),
])
def test_the_dashboard_url_is_logged_once_and_usable(bind: str, expected: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "web.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(VENV_BIN / "sensor-web"), "--bind", bind, "--port", str(port)],
                                env=server_env(tmp_path), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "dashboard at" in log.read_text() or proc.poll() is not None, 60, "the start-up lines")
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0, log.read_text()
    lines = [line for line in log.read_text().splitlines() if "dashboard at" in line]
    assert len(lines) == 1, lines
    assert lines[0].endswith(expected.format(port=port, host=socket.gethostname()))


class NeverReader:
    """A viewer that completes the websocket handshake and then never reads its socket again."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel holds little for it
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /ws/live/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n\r\n"
            .encode())
        self.head = b""
        while b"\r\n\r\n" not in self.head:
            self.head += self.sock.recv(1)  # byte by byte: nothing of the stream is read

    def closed_by_server(self) -> bool:
        """Read until the server ends the connection (a close after its 1 s close handshake, or a reset)."""
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        self.sock.close()
        return True


def test_never_reading_viewer_is_disconnected_by_the_real_server(web_server: Any) -> None:
    """Through Daphne: a viewer that stops reading is dropped and counted; what it was sent stays bounded."""
    window_kb, queue_kb = 64, 256
    server = web_server(SENSOR_WEB_VIEWER_WINDOW_KB=str(window_kb), SENSOR_WEB_VIEWER_QUEUE_KB=str(queue_kb),
                        SENSOR_WEB_BACKFILL_KB="64")
    stalled = NeverReader(server.port)
    assert stalled.head.startswith(b"HTTP/1.1 101")
    rows = b"".join(b"1764061139.%06d,%d,%s\n" % (i, i, b"0.1234," * 7 + b"0.5") for i in range(500))
    with connect(server.ws_url + "/ws/ingest/", additional_headers={"Authorization": f"Bearer {TOKEN}"},
                 open_timeout=10) as source:
        frame = 0

        def feed_until_dropped() -> bool:
            nonlocal frame
            frame += 1
            source.send(samples_message("sim0", "s1", frame, ["seq"] + [f"ch{c}" for c in range(8)], rows, 500, 1))
            return json.loads(fetch(server.url + "/api/status")[2])["web"].get("viewers_dropped", 0) >= 1
        wait_for(feed_until_dropped, 60, "the never-reading viewer to be dropped")
        sent_in_all = frame * len(rows)
    assert stalled.closed_by_server()
    line = re.search(rb"viewer \d+ from \S+ dropped: too far behind \((\d+) bytes unacknowledged, (\d+) queued",
                     server.output().encode())
    assert line, server.output()
    in_flight, queued = int(line.group(1)), int(line.group(2))
    assert in_flight <= window_kb * 1024 + len(rows) + 200 and queued <= queue_kb * 1024 < sent_in_all
    stats = json.loads(fetch(server.url + "/api/status")[2])["web"]
    assert stats["viewers_dropped"] == 1 and stats["viewers"] == 0
