"""Event markers in the web app: find the recording session, append to its file, tell every viewer.

The web app knows which session each reader is recording from the reader's status (the stream, else its
``.status`` file). A marker is appended to that session's markers file (kernel.markers) and sent to every
viewer as ``{"type": "marker", "device": ..., "session": ..., "marker": {...}}``; a new viewer gets the
markers of the sessions being recorded right after its backfill. With Redis, the message travels through
the channel layer so that every process's viewers see it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from channels.layers import get_channel_layer

from kernel.layout import is_device_id, is_session_dir, safe_id
from kernel.manifest import SessionManifest
from kernel.markers import Marker, read_markers
from kernel.status import read_statuses
from web import background
from web.errors import WebError
from web.hub import Hub
from web.status import device_summary

log = logging.getLogger(__name__)

MARKER = "marker"  # the viewer message type


class MarkerRefused(WebError):
    """A marker request that cannot be served, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def recording_sessions(hub: Hub, data_dir: Path) -> dict[str, str]:
    """Device id -> session id of every device whose reader is online and recording now."""
    devices = device_summary(hub, read_statuses(data_dir), time.time())
    return {name: str(dev["session"]) for name, dev in sorted(devices.items())
            if dev.get("recording") and dev.get("session") and dev.get("reader_online")}


def open_session_dir(data_dir: Path, device: str, session: str) -> Path | None:
    """The folder of a session still open for recording, or None."""
    if not is_device_id(device) or safe_id(session) != session:
        return None
    folder = data_dir / device / session
    if not is_session_dir(folder):
        return None
    try:
        return None if SessionManifest.load(folder).closed else folder
    except (OSError, ValueError):
        return None


def target(hub: Hub, data_dir: Path, device: str | None) -> tuple[str, str, Path]:
    """(device, session, folder) a marker goes to; MarkerRefused (409/400) when there is none or it is unclear."""
    recording = recording_sessions(hub, data_dir)
    if device is None:
        if not recording:
            raise MarkerRefused(409, "no session is recording: markers are stored with a recording session")
        if len(recording) > 1:
            raise MarkerRefused(400, f"several devices are recording ({', '.join(recording)}): say which "
                                "with \"device\"")
        device = next(iter(recording))
    elif not isinstance(device, str) or not is_device_id(device):
        raise MarkerRefused(400, f"bad device id {device!r}")
    session = recording.get(device)
    if session is None:
        raise MarkerRefused(409, f"device {device} is not recording a session: markers are stored with a "
                            "recording session")
    folder = open_session_dir(data_dir, device, session)
    if folder is None:
        raise MarkerRefused(409, f"session {device}/{session} is not open in {data_dir}")
    return device, session, folder


def marker_message(device: str, session: str, marker: Marker) -> str:
    """The viewer message announcing a marker."""
    return json.dumps({"type": MARKER, "device": device, "session": session, "marker": marker.to_dict()},
                      separators=(",", ":"), ensure_ascii=False)


def backfill(hub: Hub, data_dir: Path) -> list[str]:
    """Marker messages of the sessions being recorded, for a new viewer."""
    out = []
    for device, session in recording_sessions(hub, data_dir).items():
        folder = open_session_dir(data_dir, device, session)
        if folder is not None:
            out += [marker_message(device, session, m) for m in read_markers(folder)]
    return out


async def announce(hub: Hub, text: str) -> None:
    """Send a marker message to every viewer (of every process, through the channel layer when used)."""
    if background.use_layer():
        layer = get_channel_layer()
        if layer is not None:
            await layer.group_send(background.GROUP, {"type": background.MARKER_MESSAGE, "text": text})
            return
    hub.broadcast(text)
