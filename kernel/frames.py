"""The live-stream protocol between the reader and the web app: JSON text messages over one websocket.

The reader connects to ``SENSOR_WS_URL`` with the header ``Authorization: Bearer <SENSOR_INGEST_TOKEN>``
and sends two kinds of message; the web app fans them out to viewers unchanged.

``samples`` — as lines arrive, at most about one every 5 ms (coalesced under load)::

    {"type": "samples", "device": "sim0", "session": "20261125T085900Z", "frame": 17,
     "columns": ["seq", "ch1", "ch2"], "n": 50, "decimation": 1,
     "rows": "1764061139.123456,101,0.52,-0.10\\n..."}

  ``rows`` holds ``n`` newline-terminated CSV rows: the host receive time (Unix seconds, microseconds),
  then the device fields exactly as stored in the batch. ``decimation`` k > 1 means only every k-th line
  was sent (display is best-effort; the batch files hold every line). ``frame`` counts frames per reader
  process, so a gap shows frames dropped on the way.

``status`` — about once a second, and at once on connect/disconnect of the device: the reader's
health document (kernel.status.ReaderStatus) with its type::

    {"type": "status", "device": "sim0", "session": "...", "connected": true, "port": "/dev/ttyUSB0",
     "recording": true, "rate": 1000.0, "lines": 12345, "rejects": 0, "gaps": 0, "missing": 0,
     "frames_dropped": 0, "lost_lines": 0, "lost": {}, "disk_error": null, "unit": "mV", "time": 1764061139.5}

Receivers decode the envelope once (:func:`parse_envelope`) and forward the text unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

PROTOCOL_VERSION = 1  # of the messages below; a change that old receivers cannot read gets a new version
SAMPLES = "samples"
STATUS = "status"
TYPES = (SAMPLES, STATUS)


def samples_message(
    device: str, session: str, frame: int, columns: list[str], rows: bytes, n: int, decimation: int
) -> str:
    """Build a samples message from already-formatted rows (bytes, newline-terminated)."""
    return json.dumps(
        {
            "type": SAMPLES,
            "device": device,
            "session": session,
            "frame": frame,
            "columns": columns,
            "n": n,
            "decimation": decimation,
            "rows": rows.decode("ascii"),
        },
        separators=(",", ":"),
    )


def status_message(**fields: Any) -> str:
    """Build a status message; fields as documented above."""
    return json.dumps({"type": STATUS, **fields}, separators=(",", ":"))


def parse_message(text: str) -> dict[str, Any]:
    """Decode a message and check its type; raises ValueError on anything else."""
    msg = json.loads(text)
    if not isinstance(msg, dict) or msg.get("type") not in TYPES:
        raise ValueError("not a sensor stream message")
    return msg


@dataclasses.dataclass(frozen=True)
class Envelope:
    """What a receiver needs of a message without touching its rows: type, device, a status's fields."""

    type: str
    device: str
    status: dict[str, Any] | None = None  # the status fields (without the type), for status messages


def parse_envelope(text: str) -> Envelope:
    """Decode a message's envelope; ValueError (with the reason) for anything that is not a stream message."""
    try:
        msg = json.loads(text)
        kind, device = msg["type"], str(msg["device"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError("not a JSON stream message") from err
    if kind not in TYPES:
        raise ValueError(f"unknown type {kind!r}")
    status = {k: v for k, v in msg.items() if k != "type"} if kind == STATUS else None
    return Envelope(kind, device, status)


def parse_rows(msg: dict[str, Any]) -> list[list[str]]:
    """Split a samples message's rows into fields (time first); for tests and tools, not the hot path."""
    return [line.split(",") for line in msg["rows"].splitlines()]
