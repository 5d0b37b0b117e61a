"""The work loop: scan → upload pass (uploader/pipeline.py) → quota cleanup → status/watchdog, with outage handling.

Outages (unreachable endpoint, timeouts, 5xx, SlowDown) back off exponentially up to a cap and only
grow the backlog; bad credentials or a missing bucket are reported once and retried slowly. Each is
logged once when it starts and once when it ends. WATCHDOG=1 is sent only after an iteration has
completed, so a hung upload (or any hang in the loop) lets systemd's watchdog fire.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from typing import Any

from kernel.notify import Notifier
from kernel.status import UploaderProgress, quota_update, read_statuses, uploader_status
from uploader import quota
from uploader.errors import S3ConfigError, S3Unavailable, Stopped, UploaderError
from uploader.notify import publish_status, status_line
from uploader.pipeline import Pipeline
from uploader.settings import Settings
from uploader.state import Plan, plan, scan
from uploader.trigger import BatchTrigger

log = logging.getLogger(__name__)

PROGRESS_MIN_BATCHES = 10


class _Progress:
    """A tqdm bar over the bytes of a pass, with the batch count alongside."""

    def __init__(self, total_bytes: int, total_batches: int) -> None:
        from tqdm import tqdm

        size = shutil.get_terminal_size((100, 24))  # falls back when the terminal reports 0x0
        self.bar = tqdm(
            total=total_bytes,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc="upload",
            file=sys.stderr,
            ncols=size.columns,
            nrows=max(size.lines, 2),
        )
        self.count, self.total = 0, total_batches
        self.bar.set_postfix_str(f"0/{total_batches} batches")

    def update(self, size: int) -> None:
        """One more batch of ``size`` bytes done."""
        self.count += 1
        self.bar.set_postfix_str(f"{self.count}/{self.total} batches", refresh=False)
        self.bar.update(size)

    def close(self) -> None:
        """Finish the bar."""
        self.bar.close()


class Service:
    """The uploader's loop; ``run()`` returns the process exit code."""

    def __init__(
        self,
        settings: Settings,
        stop: threading.Event,
        notifier: Notifier | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.settings = settings
        self.stop = stop
        self.notifier = notifier or Notifier.disabled()
        self.pipeline = pipeline or Pipeline(settings, stop)
        self.pipeline.heartbeat = self.notifier.watchdog
        self.state = "starting"
        self.error = ""
        self.backlog = (0, 0)
        self.quota_report: quota.QuotaReport | None = None
        self._problem: tuple[type, str] | None = None
        self._problem_since = 0.0
        self._backoff = 0.0
        self._next_try = 0.0
        self._more_work = False
        self._seen_errors: set[str] = set()
        self.passes = 0
        self.failed_passes = 0
        self.failures = 0  # consecutive failed attempts while in an outage/config problem
        self.trigger: BatchTrigger | None = None
        self._redirect: Any = None  # tqdm's logging redirect while the progress bar is shown
        published = uploader_status(read_statuses(settings.data_dir))
        previous = published.last_upload if published is not None else None
        if isinstance(previous, (int, float)) and self.pipeline.last_upload is None:
            self.pipeline.last_upload = float(previous)

    # --- the loop -----------------------------------------------------------------------------------

    def run(self) -> int:
        """Iterate until stopped (or once); exit code 0, or 1/4 after --once with failures/alarm."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.pipeline.warm_up()
        self._probe()  # opens the first connection too: the first batch pays no warm-up
        self.notifier.ready()
        log.info(
            "uploading %s to s3://%s/%s as %s (box %s)",
            self.settings.data_dir,
            self.settings.bucket,
            self.settings.prefix,
            self.settings.upload_format,
            self.settings.box_id,
        )
        self._start_trigger()
        ok = True
        try:
            while True:
                ok = self.iteration()
                self.notifier.watchdog()
                if self.settings.once or self.stop.is_set():
                    break
                self._sleep(self._wait_time())
                if self.stop.is_set():
                    break
        finally:
            if self.trigger is not None:
                self.trigger.close()
            self.notifier.stopping()
            self.state = "stopped" if self.stop.is_set() or not self.settings.once else self.state
            self._end_progress()
            self._publish()
            self.pipeline.close()
        if self.stop.is_set():
            log.info("stopped on request")
            return 0
        if self.settings.once and self.quota_report is not None and self.quota_report.alarm:
            return 4
        return 0 if ok else 1

    def _start_trigger(self) -> None:
        """Watch for committed batches (inotify) unless switched off or running once; polling stays."""
        if not self.settings.watch or self.settings.once:
            return
        trigger = BatchTrigger(self.settings.data_dir, self.stop, self.settings.interval)
        if trigger.start():
            self.trigger = trigger
            log.info(
                "watching %d folders for committed batches (inotify); polling every %g s as a fallback",
                trigger.watched,
                self.settings.interval,
            )

    def _sleep(self, seconds: float) -> None:
        """Wait for the next iteration: the time is up, a stop, or a committed batch (unless S3 is down)."""
        if self.trigger is None or self._problem is not None:
            self.stop.wait(seconds)  # in an outage the backoff decides, however many batches arrive
        else:
            self.trigger.wait(seconds)

    def _wait_time(self) -> float:
        """Seconds until the next iteration (capped by half the watchdog interval)."""
        if self._more_work and self._problem is None:
            return 0.0
        wait = self.settings.interval
        if self._problem is not None:
            wait = max(0.0, min(wait, self._next_try - time.monotonic())) if self._next_try else wait
        if self.notifier.watchdog_interval:
            wait = min(wait, self.notifier.watchdog_interval / 2)
        return wait

    def iteration(self) -> bool:
        """One scan + upload pass (when due) + cleanup + status. Returns False if uploads failed."""
        ok = self.upload_pass()
        self.cleanup()
        self._publish()
        return ok

    # --- uploading ----------------------------------------------------------------------------------

    def upload_pass(self) -> bool:
        """Upload the oldest pending batches (at most ``max_batches``), if S3 is not in a backoff period."""
        work = plan(scan(self.settings.data_dir), self.settings.max_batches)
        self.backlog = (work.backlog_batches, work.backlog_bytes)
        self._more_work = work.backlog_batches > len(work.batches)
        if work.empty:
            self.state = "idle" if self._problem is None else self.state
            self._end_progress()
            return True
        if self._problem is not None and time.monotonic() < self._next_try:
            return False
        self._publish()  # the backlog as seen now, before any network call
        if self._problem is not None and not self._probe():
            return False
        self.state = "uploading"
        self._publish()
        self._start_progress(work)
        result = self.pipeline.run_pass(work)
        self.passes += 1
        if result.ok:
            self._recovered()
        else:
            self.failed_passes += 1
            self._classify(result.errors)
        done = result.uploaded + result.skipped
        self.backlog = (work.backlog_batches - done, max(0, work.backlog_bytes - result.uploaded_bytes))
        self._more_work = self.backlog[0] > 0 and done > 0
        if done:
            log.info(
                "uploaded %d batches (%.1f MB; %d already there) in %.1f s; backlog %d batches",
                result.uploaded,
                result.uploaded_bytes / 1e6,
                result.skipped,
                result.seconds,
                self.backlog[0],
            )
        if self._problem is None:
            self.state = "uploading" if self.backlog[0] else "idle"
        if not self.backlog[0] or self.stop.is_set():
            self._end_progress()
        return result.ok

    def _probe(self) -> bool:
        """One cheap request (after a problem: before a whole pass); False when S3 still fails."""
        try:
            self.pipeline.store.probe()
        except UploaderError as err:
            self._failed(err)
            return False
        return True

    def _start_progress(self, work: Plan) -> None:
        """A progress bar over the whole backlog (kept across passes) when it is large and we are on a terminal."""
        show = self.settings.progress == "on" or (
            self.settings.progress == "auto"
            and (self.settings.foreground or self.settings.once)
            and sys.stderr.isatty()
        )
        if self.pipeline.progress is None and show and work.backlog_batches >= PROGRESS_MIN_BATCHES:
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._redirect = logging_redirect_tqdm()
            self._redirect.__enter__()
            self.pipeline.progress = _Progress(work.backlog_bytes, work.backlog_batches)

    def _end_progress(self) -> None:
        """Close the progress bar."""
        if self.pipeline.progress is not None:
            self.pipeline.progress.close()
            self.pipeline.progress = None
            self._redirect.__exit__(None, None, None)

    def _classify(self, errors: list[UploaderError]) -> None:
        """Turn a failed pass's errors into outage / config problem / per-batch errors."""
        for kind in (S3ConfigError, S3Unavailable):
            found = [e for e in errors if isinstance(e, kind)]
            if found:
                self._failed(found[0])
                return
        for err in errors:
            if isinstance(err, Stopped):
                continue
            text = str(err)
            if text not in self._seen_errors:
                self._seen_errors.add(text)
                log.error("%s (retried on the next pass)", text)
            else:
                log.debug("still failing: %s", text)
        self.error = next((str(e) for e in errors if not isinstance(e, Stopped)), "")

    def _failed(self, err: UploaderError) -> None:
        """Enter or stay in an outage / configuration-problem state, logging only the start."""
        now = time.monotonic()
        kind = S3ConfigError if isinstance(err, S3ConfigError) else S3Unavailable
        if isinstance(err, S3ConfigError):
            delay = self.settings.fatal_retry
            self.state = "error"
        else:
            self._backoff = min(self.settings.backoff_max, max(1.0, self._backoff * 2))
            delay = self._backoff
            self.state = "outage"
        changed = self._problem is None or self._problem[0] is not kind
        if changed or (kind is S3ConfigError and self._problem != (kind, str(err))):
            if self._problem is None:
                self._problem_since = now
            if kind is S3ConfigError:
                log.error(
                    "S3 refuses the upload: %s; %s",
                    err,
                    "not retried (--once)" if self.settings.once else f"retrying every {delay:g} s",
                )
            else:
                log.warning(
                    "S3 unreachable: %s; %s; the backlog grows meanwhile (%d batches)",
                    err,
                    "not retried (--once)"
                    if self.settings.once
                    else f"retrying with backoff (max {self.settings.backoff_max:g} s)",
                    self.backlog[0],
                )
        self._problem = (kind, str(err))
        self.error = str(err)
        self.failures += 1
        self._next_try = now + delay

    def _recovered(self) -> None:
        """Leave the problem state, logging the recovery once."""
        if self._problem is not None:
            log.warning(
                "S3 reachable again after %.0f s; uploading the backlog",
                time.monotonic() - self._problem_since,
            )
        self._problem, self._backoff, self._next_try, self.error, self.failures = None, 0.0, 0.0, "", 0

    # --- cleanup and status -------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Enforce the disk quota; raise/clear the alarm with one log line each."""
        before = self.quota_report.alarm if self.quota_report else False
        try:
            report = quota.enforce(self.settings)
        except OSError as err:
            log.error("quota cleanup failed: %s", err)
            return
        if report.alarm and not before:
            log.critical("DISK QUOTA ALARM: %s", report.message)
        elif before and not report.alarm:
            log.warning(
                "disk quota alarm cleared: %d of %d bytes used", report.used_bytes, report.total_bytes
            )
        self.quota_report = report

    def _publish(self) -> None:
        """Status file + systemd STATUS line."""
        last = self.pipeline.last_upload
        progress = UploaderProgress(
            state=self.state,
            backlog_batches=self.backlog[0],
            backlog_bytes=self.backlog[1],
            last_upload=last,
            error=self.error or None,
            failures=self.failures,
            uploaded_batches=self.pipeline.uploaded,
            uploaded_bytes=self.pipeline.uploaded_bytes,
        )
        status = progress.to_dict()
        if self.quota_report is not None:
            status.update(quota_update(self.quota_report.as_status()))
        publish_status(self.settings.data_dir, status)
        self.notifier.status(status_line(self.state, *self.backlog, last))


def cleanup_only(settings: Settings) -> int:
    """``--cleanup-only``: one quota run (for a systemd timer); exit 4 when the alarm is raised."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    report = quota.enforce(settings)
    if report.alarm:
        log.critical("DISK QUOTA ALARM: %s", report.message)
    log.info(
        "quota: %d of %d bytes used; deleted %d sessions",
        report.used_bytes,
        report.total_bytes,
        len(report.evicted),
    )
    publish_status(settings.data_dir, quota_update(report.as_status()))
    return 4 if report.alarm else 0
