"""The Luigi DAG of one pass: ProcessBatch → UploadBatch → PublishSession, run by the local scheduler.

The pass's batches are cut into chunks of ``Settings.chunk`` (oldest first); each chunk is one
ProcessBatch (one Dask call) and one UploadBatch (one round of concurrent uploads). A task is complete
when the output marker of *every* batch in it exists (see uploader/state.py) and its run skips the
batches already done, so a rerun after a crash repeats nothing. A PublishSession requires the chunks
holding its session's batches (plus one task over those uploaded by earlier passes, already complete).
Few, chunk-sized tasks keep Luigi's scheduling cost per batch well under a millisecond.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # Luigi itself warns at import time unless a luigi.cfg sets [core] autoload_range (a deprecation of
    # its own default). We ship no luigi.cfg, so silence exactly that message, only around the import.
    warnings.filterwarnings("ignore", message=r"\s*Autoloading range tasks", category=DeprecationWarning)
    import luigi

from kernel.layout import committed_batches, is_touched
from kernel.upload_state import uploaded_path
from uploader.errors import UploaderError
from uploader.pipeline import Pipeline
from uploader.state import Plan

log = logging.getLogger(__name__)

_ACTIVE: Pipeline | None = None  # the pipeline of the pass being run (Luigi tasks hold only strings)


def active() -> Pipeline:
    """The pipeline of the running pass."""
    if _ACTIVE is None:
        raise RuntimeError("no upload pass is running")
    return _ACTIVE


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

    @classmethod
    def get_params(cls) -> list[tuple[str, luigi.Parameter]]:
        """Luigi's parameter list, computed once per class (Luigi walks ``dir(cls)`` on every call)."""
        cached = cls.__dict__.get("_params_cache")
        if cached is None:
            cached = super().get_params()
            cls._params_cache = cached
        return list(cached)

    def on_failure(self, exception: BaseException) -> str:
        """Record our own errors (once) and let Luigi report the rest."""
        errors = active().errors
        if isinstance(exception, UploaderError) and not any(e is exception for e in errors):
            errors.append(exception)
        return super().on_failure(exception)


class ProcessBatch(_PipelineTask):
    """Validate, describe and convert a chunk of batches (one Dask call)."""

    batches = luigi.ListParameter()

    def output(self) -> list[luigi.Target]:
        """Each batch's stats marker, for the configured format, with its object file present."""
        return [_MarkerTarget(Path(b), active().processed) for b in self.batches]

    def run(self) -> None:
        """Process the batches not yet processed (none left still moves the read-ahead on)."""
        active().process([Path(b) for b in self.batches])


class UploadBatch(_PipelineTask):
    """Upload a chunk of processed batches concurrently and verify each by HEAD."""

    batches = luigi.ListParameter()

    def requires(self) -> luigi.Task:
        """The processing of the same batches."""
        return ProcessBatch(batches=self.batches)

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
    chunks = luigi.ListParameter()  # the pass's chunks holding batches of this session
    earlier = luigi.ListParameter(default=())  # its batches uploaded by earlier passes

    def requires(self) -> list[luigi.Task]:
        """Every committed batch of the session, uploaded."""
        tasks = [UploadBatch(batches=c) for c in self.chunks]
        return tasks + [UploadBatch(batches=self.earlier)] if self.earlier else tasks

    def output(self) -> luigi.Target:
        """The session's .touched marker."""
        return _MarkerTarget(Path(self.session), is_touched)

    def run(self) -> None:
        """Publish."""
        active().publish(Path(self.session))


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


def cut(batches: list[Path], chunk: int, first: int) -> list[tuple[str, ...]]:
    """The pass's chunks, oldest first: a small first one, so uploading starts at once, then full ones.

    While the first chunk uploads, the read-ahead already processes the next full chunk, and so on.
    """
    size = min(chunk, first)
    out, i = [], 0
    while i < len(batches):
        out.append(tuple(str(b) for b in batches[i : i + size]))
        i, size = i + size, chunk
    return out


def run_pass(pipeline: Pipeline, plan: Plan) -> PassResult:
    """Run one pass of the DAG over the planned batches and sessions with Luigi's local scheduler."""
    global _ACTIVE
    _quiet_luigi()
    started = time.perf_counter()
    pipeline.errors.clear()
    before = (pipeline.uploaded, pipeline.uploaded_bytes, pipeline.skipped)
    chunks = cut(plan.batches, pipeline.settings.chunk, 2 * pipeline.settings.concurrency)
    roots: list[luigi.Task] = [UploadBatch(batches=c) for c in chunks]
    for sdir in plan.publish:
        mine = {str(b) for b in committed_batches(sdir)}
        held = tuple(c for c in chunks if not mine.isdisjoint(c))
        earlier = tuple(sorted(mine.difference(*held)))
        roots.append(PublishSession(session=str(sdir), chunks=held, earlier=earlier))
    _ACTIVE = pipeline
    pipeline.begin_pass(plan.batches)
    try:
        result = luigi.build(roots, local_scheduler=True, detailed_summary=True, workers=1) if roots else None
    finally:
        pipeline.end_pass()
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
