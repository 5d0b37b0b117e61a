"""The markers API on a real sensor-web: token and login (with CSRF) auth, 409 without a session, bad labels,
and the live broadcast to websocket viewers (backfill for a late one)."""

from __future__ import annotations

import http.cookiejar
import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from kernel.batch import format_time
from kernel.frames import status_message
from kernel.manifest import SessionManifest
from kernel.markers import MAX_LABEL, read_markers

from .conftest import TOKEN, VENV_BIN, WebServer

API_TOKEN = "test-api-token-for-scripts-0123456789"
SESSION = "20261129T120000Z"


class Browser:
    """An HTTP client with a cookie jar (a stand-in for a logged-in page's fetch calls)."""

    def __init__(self, server: WebServer) -> None:
        self.server = server
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def request(self, path: str, body: Any = None, headers: dict[str, str] | None = None,
                form: dict[str, str] | None = None) -> tuple[int, str]:
        """(status, text) of a GET, or of a POST when a JSON body or a form is given."""
        data = None
        hdrs = dict(headers or {})
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        req = urllib.request.Request(self.server.url + path, data=data, headers=hdrs)
        try:
            with self.opener.open(req, timeout=15) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def post_marker(self, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
        """POST /api/markers; (status, decoded JSON)."""
        status, text = self.request("/api/markers", body=body, headers=headers)
        return status, json.loads(text)

    def login(self, user: str, password: str) -> str:
        """Log in through the login form; returns the dashboard's CSRF token."""
        _, page = self.request("/accounts/login/")
        form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        status, _ = self.request("/accounts/login/", form={
            "username": user, "password": password, "csrfmiddlewaretoken": form_token})
        assert status == 200
        _, page = self.request("/")
        return re.search(r'data-csrf-token="([^"]+)"', page).group(1)


def session_folder(data_dir: Path, device: str = "sim0", session: str = SESSION) -> Path:
    """An open session folder as the reader leaves it while recording."""
    folder = data_dir / device / session
    folder.mkdir(parents=True)
    SessionManifest(device_id=device, session_id=session, port="/dev/pts/9", baudrate=115200,
                    columns=["seq", "ch1"], started_at=format_time(datetime.now(UTC)),
                    software_version="test").save(folder)
    return folder


@contextmanager
def recording(server: WebServer, device: str = "sim0", session: str = SESSION,
              is_recording: bool = True) -> Iterator[Any]:
    """A reader's ingest connection announcing that ``device`` records ``session`` (or only streams)."""
    with connect(server.ws_url + "/ws/ingest/", additional_headers={"Authorization": f"Bearer {TOKEN}"},
                 open_timeout=10) as ingest:
        ingest.send(status_message(device=device, session=session, connected=True, port="/dev/pts/9",
                                   recording=is_recording, rate=1000.0, lines=10, time=0.0))
        ingest.send(status_message(device=device, session=session, connected=True, port="/dev/pts/9",
                                   recording=is_recording, rate=1000.0, lines=11, time=0.0))
        yield ingest


def next_marker(ws: Any, timeout: float = 10.0) -> dict[str, Any]:
    """The next marker message a viewer receives (other messages skipped, acknowledged as a page does)."""
    received = 0
    while True:
        msg = json.loads(ws.recv(timeout=timeout))
        received += 1
        ws.send(json.dumps({"ack": received}))
        if msg["type"] == "marker":
            return msg


def wait_recording(client: Browser, **headers: str) -> None:
    """Wait until the server has taken in the reader's status (the GET stops answering 409)."""
    from tests.support import wait_for

    wait_for(lambda: client.request("/api/markers", headers=headers)[0] == 200, 10, "the recording session")


def test_a_script_places_markers_with_the_api_token(web_server: Any) -> None:
    server = web_server(SENSOR_WEB_API_TOKEN=API_TOKEN)
    folder = session_folder(server.data_dir)
    client = Browser(server)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    with recording(server):
        wait_recording(client, **auth)
        status, doc = client.post_marker({"label": "stimulus on"}, **auth)
        assert status == 201, doc
        assert doc["device"] == "sim0" and doc["session"] == SESSION
        assert doc["marker"]["source"] == "api" and doc["marker"]["user"] is None
        status, doc2 = client.post_marker({"label": "patient moved", "device": "sim0"}, **auth)
        assert status == 201, doc2

        assert [m.label for m in read_markers(folder)] == ["stimulus on", "patient moved"]
        assert read_markers(folder)[0].to_dict() == doc["marker"]
        status, text = client.request("/api/markers?device=sim0", headers=auth)
        assert status == 200 and [m["label"] for m in json.loads(text)["markers"]] == ["stimulus on",
                                                                                       "patient moved"]

        assert client.post_marker({"label": "x"}, Authorization="Bearer wrong-token")[0] == 403
        # without a token or cookie, on an open display, the CSRF check still guards the POST
        status, doc = client.post_marker({"label": "x"})
        assert status == 403 and "CSRF" in doc["error"]
        # bad requests: a clear message, nothing written
        for body, reason in (({"label": "a\nb"}, "control character"), ({"label": ""}, "empty"),
                             ({"label": "x" * (MAX_LABEL + 1)}, "at most"), ({}, "string"),
                             (b"{not json", "JSON"), ({"label": "x", "device": "../etc"}, "bad device"),
                             ({"label": "x", "device": "other"}, "not recording")):
            status, doc = client.post_marker(body, **auth)
            assert status in (400, 409) and reason in doc["error"], (body, status, doc)
        assert len(read_markers(folder)) == 2


def test_no_recording_session_is_a_clear_409(web_server: Any) -> None:
    server = web_server(SENSOR_WEB_API_TOKEN=API_TOKEN)
    session_folder(server.data_dir)
    client = Browser(server)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    status, doc = client.post_marker({"label": "too early"}, **auth)
    assert status == 409 and doc["error"] == ("no session is recording: markers are stored with a recording "
                                              "session")
    with recording(server, is_recording=False):  # connected and streaming, but not recording
        status, doc = client.post_marker({"label": "still too early", "device": "sim0"}, **auth)
        assert status == 409 and "sim0 is not recording" in doc["error"]
    assert not (server.data_dir / "sim0" / SESSION / "markers.jsonl").exists()


def test_logged_in_viewers_place_markers_with_the_csrf_token_and_every_viewer_sees_them(web_server: Any) -> None:
    server = web_server(SENSOR_WEB_LOGIN_REQUIRED="1")
    made = subprocess.run([str(VENV_BIN / "sensor-web"), "createuser", "alice", "--password-stdin"],
                          input="correct horse battery\n", env=server.env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    folder = session_folder(server.data_dir)
    anonymous, alice = Browser(server), Browser(server)
    with recording(server):
        status, doc = anonymous.post_marker({"label": "x"})
        assert status == 401 and "log in" in doc["error"]
        token = alice.login("alice", "correct horse battery")
        wait_recording(alice)
        assert alice.post_marker({"label": "x"})[0] == 403  # logged in, but no CSRF token

        headers = [("cookie", "; ".join(f"{c.name}={c.value}" for c in _jar(alice)))]
        with viewer_with(server, headers) as one, viewer_with(server, headers) as two:
            status, doc = alice.post_marker({"label": "stimulus on"}, **{"X-CSRFToken": token})
            assert status == 201, doc
            assert doc["marker"]["source"] == "dashboard" and doc["marker"]["user"] == "alice"
            for ws in (one, two):
                msg = next_marker(ws)
                assert msg["device"] == "sim0" and msg["session"] == SESSION and msg["marker"] == doc["marker"]
        with viewer_with(server, headers) as late:  # a new viewer gets the session's markers in its backfill
            assert next_marker(late)["marker"] == doc["marker"]
    assert [(m.label, m.user) for m in read_markers(folder)] == [("stimulus on", "alice")]


def _jar(client: Browser) -> http.cookiejar.CookieJar:
    for handler in client.opener.handlers:
        if isinstance(handler, urllib.request.HTTPCookieProcessor):
            return handler.cookiejar
    raise AssertionError("no cookie jar")


def viewer_with(server: WebServer, headers: list[tuple[str, str]]) -> Any:
    """A logged-in dashboard's websocket (the session cookie sent along)."""
    return connect(server.ws_url + "/ws/live/", origin=server.url, additional_headers=headers, open_timeout=10)
