"""The Luigi DAG of one pass: ProcessBatch → UploadBatch → PublishSession, run by the local scheduler.

Each task is complete when its output marker exists (see uploader/state.py), so a rerun after a crash
repeats nothing already done. ProcessBatch and UploadBatch are *batchable*: Luigi's scheduler merges
pending tasks of one family into a single run (up to ``Settings.chunk``), so one Dask call processes
many batches and one thread pool uploads them concurrently, keeping the per-batch overhead small.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # Luigi itself warns at import time unless a luigi.cfg sets [core] autoload_range (a deprecation of
    # its own default). We ship no luigi.cfg, so silence exactly that message, only around the import.
    warnings.filterwarnings("ignore", message=r"\s*Autoloading range tasks", category=DeprecationWarning)
    import luigi

from reader.format import committed_batches, is_touched
from uploader.convert import stats_path
from uploader.errors import UploaderError
from uploader.pipeline import Pipeline
from uploader.state import Plan, read_json, staging_dir, stem, uploaded_path

log = logging.getLogger(__name__)

_ACTIVE: Pipeline | None = None  # the pipeline of the pass being run (Luigi tasks hold only strings)


def active() -> Pipeline:
    """The pipeline of the running pass."""
    if _ACTIVE is None:
        raise RuntimeError("no upload pass is running")
    return _ACTIVE


def _concat(values: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    """Luigi batch method: merge the batch lists of several tasks into one."""
    return tuple(p for v in values for p in v)


class _MarkerTarget(luigi.Target):
    """A target that exists when a predicate on a path holds."""

    def __init__(self, path: Path, check: Any = None) -> None:
        self.path = path
        self._check = check

    def exists(self) -> bool:
        """True when the marker is present (and passes the check)."""
        return self._check(self.path) if self._check else self.path.exists()


class _PipelineTask(luigi.Task):
    """Base of our tasks: failures are also recorded on the pipeline, for the pass result."""

    def on_failure(self, exception: BaseException) -> str:
        """Record our own errors (once) and let Luigi report the rest."""
        errors = active().errors
        if isinstance(exception, UploaderError) and not any(e is exception for e in errors):
            errors.append(exception)
        return super().on_failure(exception)


class ProcessBatch(_PipelineTask):
    """Validate, describe and convert batches (one Dask call for the whole Luigi batch)."""

    batches = luigi.ListParameter(batch_method=_concat)

    @property
    def max_batch_size(self) -> int:  # read by Luigi when registering the batcher
        """How many batches Luigi may merge into one run."""
        return active().settings.chunk

    def output(self) -> list[luigi.Target]:
        """Each batch's stats marker, for the configured format, with its object file present."""
        return [_MarkerTarget(Path(b), _processed) for b in self.batches]

    def run(self) -> None:
        """Process the batches not yet processed."""
        todo = [Path(b) for b in self.batches if not _processed(Path(b))]
        if todo:
            active().process(todo)


class UploadBatch(_PipelineTask):
    """Upload processed batches concurrently and verify each by HEAD."""

    batches = luigi.ListParameter(batch_method=_concat)

    @property
    def max_batch_size(self) -> int:
        """How many batches Luigi may merge into one run."""
        return active().settings.chunk

    def requires(self) -> list[luigi.Task]:
        """The processing of the same batches."""
        return [ProcessBatch(batches=(b,)) for b in self.batches]

    def output(self) -> list[luigi.Target]:
        """Each batch's verified-upload marker."""
        return [_MarkerTarget(uploaded_path(Path(b))) for b in self.batches]

    def run(self) -> None:
        """Upload those not yet uploaded."""
        todo = [Path(b) for b in self.batches if not uploaded_path(Path(b)).exists()]
        if todo:
            active().upload_many(todo)


class PublishSession(_PipelineTask):
    """Upload a closed session's manifest once all its batches are verified, then mark it touched."""

    session = luigi.Parameter()
    batches = luigi.ListParameter()

    def requires(self) -> list[luigi.Task]:
        """Every committed batch of the session, uploaded."""
        return [UploadBatch(batches=(b,)) for b in self.batches]

    def output(self) -> luigi.Target:
        """The session's .touched marker."""
        return _MarkerTarget(Path(self.session), is_touched)

    def run(self) -> None:
        """Publish."""
        active().publish(Path(self.session))


def _processed(batch: Path) -> bool:
    """The batch has a stats marker for the configured format (or its raw fallback) and its object file."""
    info = read_json(stats_path(staging_dir(batch.parent), stem(batch)))
    if info is None or "object_file" not in info:
        return False
    fmt_ok = info.get("format") == active().settings.upload_format or not info.get("valid", True)
    return fmt_ok and Path(info["object_file"]).exists()


@dataclasses.dataclass
class PassResult:
    """What a pass did."""

    ok: bool
    errors: list[UploaderError]
    uploaded: int
    uploaded_bytes: int
    skipped: int
    seconds: float
    luigi_status: str


class _KnownErrorFilter(logging.Filter):
    """Drop Luigi's traceback for failures we already report ourselves (outage logged once, not per task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record unless it carries one of our own exceptions."""
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, UploaderError)


def _quiet_luigi() -> None:
    """Leave logging set-up to our entry point, and filter Luigi's tracebacks of our own errors."""
    config = luigi.configuration.get_config()
    if not config.has_section("core"):
        config.add_section("core")
    config.set("core", "no_configure_logging", "true")
    logger = logging.getLogger("luigi-interface")
    if not any(isinstance(f, _KnownErrorFilter) for f in logger.filters):
        logger.addFilter(_KnownErrorFilter())


def run_pass(pipeline: Pipeline, plan: Plan) -> PassResult:
    """Run one pass of the DAG over the planned batches and sessions with Luigi's local scheduler."""
    global _ACTIVE
    _quiet_luigi()
    started = time.perf_counter()
    pipeline.errors.clear()
    before = (pipeline.uploaded, pipeline.uploaded_bytes, pipeline.skipped)
    roots: list[luigi.Task] = [UploadBatch(batches=(str(b),)) for b in plan.batches]
    for sdir in plan.publish:
        roots.append(
            PublishSession(session=str(sdir), batches=tuple(str(b) for b in committed_batches(sdir)))
        )
    _ACTIVE = pipeline
    try:
        result = luigi.build(roots, local_scheduler=True, detailed_summary=True, workers=1) if roots else None
    finally:
        _ACTIVE = None
    status = result.status.name if result is not None else "NOTHING_TO_DO"
    succeeded = (luigi.LuigiStatusCode.SUCCESS, luigi.LuigiStatusCode.SUCCESS_WITH_RETRY)
    ok = not pipeline.errors and (result is None or result.status in succeeded)
    if result is not None and not ok and not pipeline.errors:
        log.error("pass failed (Luigi status %s):\n%s", status, result.summary_text)
    return PassResult(
        ok,
        list(pipeline.errors),
        pipeline.uploaded - before[0],
        pipeline.uploaded_bytes - before[1],
        pipeline.skipped - before[2],
        time.perf_counter() - started,
        status,
    )
