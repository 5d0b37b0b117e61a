"""The session manifest ``session.json``: what was recorded, from what, and how it went (typed, versioned).

The reader writes it when a session starts, after the first commit and when it ends (atomic replace);
the uploader, the analysis and crash recovery read it. Readers ignore fields a newer writer added.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from kernel.atomic import write_atomic
from kernel.layout import MANIFEST_NAME

FORMAT_VERSION = 1

STATE_OPEN = "open"  # recording
STATE_CLOSED = "closed"  # finalised: no batch will be added

# End reasons (``end_reason``).
END_STOPPED = "stopped"
END_UNPLUGGED = "unplugged"
END_RECOVERED = "recovered"  # closed by crash recovery at the next start

# Causes of lines the reader read but could not keep (session.json "lost", the status "lost").
LOST_DISK_FULL = "disk_full"  # held in memory at stop/unplug; the disk stayed full beyond the reserve
LOST_DISK_ERROR = "disk_error"  # held in memory at stop/unplug; the disk failed otherwise (I/O error, ...)
LOST_BUFFER = "buffer_overflow"  # dropped: the memory buffer was full while the disk refused writes
LOST_KILL = "kill"  # counter gap since a session that ended in a crash (kill -9, power loss)
LOST_OFFLINE = "offline"  # counter gap since a session that ended normally (sent while no reader read)


@dataclasses.dataclass
class ClockQuality:
    """The sample clock's model and quality over a session (session.json ``clock``; see reader.clock)."""

    rate_hz: float | None = None  # the device's sample rate as modelled at the end
    nominal_rate_hz: float | None = None  # the configured rate (None: estimated from the data)
    drift_ppm: float | None = None  # modelled rate vs nominal, parts per million
    delay_ms: dict[str, float | None] = dataclasses.field(default_factory=dict)  # p50/p99/max: reads behind the model
    residual_us: dict[str, float | None] = dataclasses.field(default_factory=dict)  # p50/p99/max: envelope vs line
    reads: int = 0  # bulk reads observed
    segments: int = 0  # stretches of one device clock (1 + restarts)
    restarts: dict[str, int] = dataclasses.field(default_factory=dict)  # by cause: reset, pause, jump, rate_change
    ntp_at_start: bool | None = None  # host clock NTP-synchronised when the session started (None: unknown)
    ntp_at_end: bool | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> ClockQuality:
        """Build from session.json's ``clock`` object, ignoring unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})  # type: ignore[arg-type]


@dataclasses.dataclass
class SessionManifest:
    """Contents of session.json: what was recorded, from what, and how it went."""

    device_id: str
    session_id: str
    port: str
    baudrate: int
    columns: list[str]
    started_at: str
    software_version: str
    state: str = STATE_OPEN
    ended_at: str | None = None
    end_reason: str | None = None  # END_* ("unplugged", "stopped", "recovered", ...)
    lines: int = 0
    rejects: int = 0
    gaps: int = 0
    missing: int = 0
    batches: int = 0
    lost: dict[str, int] = dataclasses.field(default_factory=dict)  # lines read but not kept, by LOST_* cause
    last_seq: int | None = None  # the last counter read (with a counter), written when the session ends
    usb_serial: str | None = None
    ntp_synchronized: bool | None = None  # host clock NTP-synchronised at start and end (None: unknown)
    clock: dict[str, object] | None = None  # the sample clock's ClockQuality, written when the session ends
    format_version: int = FORMAT_VERSION

    @property
    def closed(self) -> bool:
        """True once the session was finalised and no batch will be added."""
        return self.state == STATE_CLOSED

    @property
    def clock_quality(self) -> ClockQuality | None:
        """The sample clock's summary, when the reader recorded one."""
        return ClockQuality.from_dict(self.clock) if isinstance(self.clock, dict) else None

    def to_dict(self) -> dict[str, object]:
        """The manifest as a JSON-ready dict (every field)."""
        return dataclasses.asdict(self)

    def to_json(self) -> bytes:
        """Serialise for session.json."""
        return (json.dumps(self.to_dict(), indent=2) + "\n").encode()

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> SessionManifest:
        """Build from a decoded document, ignoring unknown keys from newer writers."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, data: bytes | str) -> SessionManifest:
        """Parse session.json contents, ignoring unknown keys from newer writers."""
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("session manifest is not a JSON object")  # noqa: TRY004 - bad file content
        return cls.from_dict(raw)

    @classmethod
    def load(cls, session_dir: Path) -> SessionManifest:
        """Read a session folder's manifest."""
        return cls.from_json((session_dir / MANIFEST_NAME).read_bytes())

    def save(self, session_dir: Path) -> None:
        """Replace the session folder's manifest atomically and durably."""
        write_atomic(session_dir / MANIFEST_NAME, self.to_json())
