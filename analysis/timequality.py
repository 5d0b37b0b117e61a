"""Time quality of recorded sessions: the sample clock's summary from each session.json, for ``summary``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kernel.manifest import SessionManifest


def time_quality(manifests: Iterable[SessionManifest]) -> list[dict[str, Any]]:
    """One entry per session: NTP state and the sample clock's model and quality (None: not recorded)."""
    out = []
    for m in manifests:
        q = m.clock_quality
        out.append({
            "session": m.session_id,
            "ntp_synchronized": m.ntp_synchronized,
            "clock": None if q is None else {
                "rate_hz": q.rate_hz, "drift_ppm": q.drift_ppm, "delay_ms": q.delay_ms,
                "residual_us": q.residual_us, "segments": q.segments, "restarts": q.restarts,
            },
        })
    return out


def _yes(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "NO"


def time_quality_text(entries: list[dict[str, Any]], limit: int = 10) -> str:
    """Human-readable time quality, at most ``limit`` sessions listed (then how many more)."""
    lines = [f"time quality: {len(entries)} session(s); axis: sample time (host time where not recorded)"]
    for e in entries[:limit]:
        c = e["clock"]
        if c is None:
            lines.append(f"  {e['session']}: no sample clock recorded (host time); NTP: {_yes(e['ntp_synchronized'])}")
            continue
        drift = f", drift {c['drift_ppm']:+.1f} ppm" if c["drift_ppm"] is not None else ""
        rate = f"{c['rate_hz']:.4f} Hz" if c["rate_hz"] is not None else "rate unknown"
        d, r = c["delay_ms"], c["residual_us"]
        restarts = ", ".join(f"{k} {v}" for k, v in c["restarts"].items()) or "none"
        lines.append(
            f"  {e['session']}: {rate}{drift}; NTP: {_yes(e['ntp_synchronized'])}; reads behind the clock "
            f"p50 {d.get('p50')} / p99 {d.get('p99')} / max {d.get('max')} ms; envelope residual p99 "
            f"{r.get('p99')} us; {c['segments']} segment(s), restarts: {restarts}"
        )
    if len(entries) > limit:
        lines.append(f"  … and {len(entries) - limit} more")
    return "\n".join(lines)
