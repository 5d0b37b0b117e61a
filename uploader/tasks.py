"""The processing stage as Luigi tasks: committed batch files in, their stats markers and objects out.

``ProcessChunk(batches, fmt, workers)`` requires ``Committed(batches)`` (the batch files, produced by the
reader) and its ``run()`` processes ``self.input()`` with Dask's threaded scheduler (Arrow's CSV reader and
Parquet writer and hashlib release the GIL, so threads share the cores without process start-up or
pickling), writing each batch's staged object and stats marker: ``self.output()``. The parameters describe
the work entirely; a task whose markers all exist is complete, so a rerun after a crash redoes nothing.
"""

from __future__ import annotations

from pathlib import Path

import luigi
from luigi.task_register import Register

from kernel.upload_state import ProcessedBatch, ProcessingFailure, staging_dir, stats_path
from uploader.convert import process_batch

Register.disable_instance_cache()  # a daemon builds tasks for months: Luigi's cache would keep them all
_CONFIG = luigi.configuration.get_config()
if not _CONFIG.has_section("core"):
    _CONFIG.add_section("core")
_CONFIG.set("core", "no_configure_logging", "true")  # logging is set up by our entry point alone


class ProcessedTarget(luigi.Target):
    """A batch's stats marker for a format (or its raw-CSV fallback), with its object file present."""

    def __init__(self, batch: Path, fmt: str) -> None:
        self.batch, self.fmt = batch, fmt

    def load(self) -> ProcessedBatch | None:
        """The marker, when it exists and fits."""
        info = ProcessedBatch.load(stats_path(self.batch))
        if info is None or (info.format != self.fmt and info.valid) or not Path(info.object_file).exists():
            return None
        return info

    def exists(self) -> bool:
        """True when processed."""
        return self.load() is not None


class Committed(luigi.ExternalTask):
    """Committed batch files: the reader's output."""

    batches = luigi.ListParameter()

    def output(self) -> list[luigi.LocalTarget]:
        """Each batch file."""
        return [luigi.LocalTarget(b) for b in self.batches]


class ProcessChunk(luigi.Task):
    """Validate, describe and convert a chunk of batches; I/O failures are left in ``failures``."""

    batches = luigi.ListParameter()
    fmt = luigi.Parameter()
    workers = luigi.IntParameter(default=1)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.failures: list[ProcessingFailure] = []

    def requires(self) -> Committed:
        """The batch files."""
        return Committed(batches=self.batches)

    def output(self) -> list[ProcessedTarget]:
        """Each batch's stats marker."""
        return [ProcessedTarget(Path(b), self.fmt) for b in self.batches]

    def run(self) -> None:
        """Process the batches not processed yet, ``workers`` at a time."""
        import dask
        import dask.local
        import dask.threaded

        todo = [Path(t.path) for t, out in zip(self.input(), self.output(), strict=True) if not out.exists()]
        work = [dask.delayed(process_batch)(str(b), self.fmt, str(staging_dir(b.parent))) for b in todo]
        # The scheduler given as a function: by name, Dask would first import distributed when installed.
        scheduler = dask.threaded.get if self.workers > 1 else dask.local.get_sync
        results = dask.compute(*work, scheduler=scheduler, num_workers=self.workers)
        self.failures = [r for r in results if isinstance(r, ProcessingFailure)]


def build(task: luigi.Task) -> bool:
    """Run a task and what it requires with Luigi's local scheduler, in this process; True on success."""
    return bool(luigi.build([task], local_scheduler=True, workers=1))
