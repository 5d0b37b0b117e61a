"""The lazy path: a dask DataFrame from the same per-file readers, locally and on a distributed cluster."""

from __future__ import annotations

import copyreg
import types
from collections.abc import Iterator
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest

from analysis.cli import main
from analysis.envelope import envelope, envelope_dask
from analysis.loading import load
from analysis.plots import COLORS
from tests.analysis.conftest import SynthData
from tests.analysis.helpers import colour_pixels


def test_lazy_load_equals_eager_load(synth: SynthData) -> None:
    lazy = load(synth.data_dir, device="dev1", lazy=True)
    eager = load(synth.data_dir, device="dev1")
    assert lazy.npartitions == 8  # one partition per batch: 4950 rows (5 batches) + 2500 rows (3)
    assert (
        lazy.known_divisions and lazy.divisions[0] == eager.index[0] and lazy.divisions[-1] == eager.index[-1]
    )
    pd.testing.assert_frame_equal(lazy.compute(), eager)
    assert lazy["ch1"].max().compute() == eager["ch1"].max()


def test_lazy_window_and_channels(synth: SynthData) -> None:
    lazy = load(synth.session_a, lazy=True, start="2.5s", duration="3s", channels=["ch4"])
    eager = load(synth.session_a, start="2.5s", duration="3s", channels=["ch4"])
    assert lazy.npartitions == 2  # rows 1250..2749: only batches 2 and 3 (1000 rows each) are read
    pd.testing.assert_frame_equal(lazy.compute(), eager)


def test_envelope_on_dask_equals_in_memory(synth: SynthData) -> None:
    eager = load(synth.session_a)
    lazy = load(synth.session_a, lazy=True)
    whole = envelope(eager, 120)
    parts = envelope_dask(lazy, eager.index[0], eager.index[-1], 120, whole.channels)
    pd.testing.assert_frame_equal(pd.DataFrame(parts.mins), pd.DataFrame(whole.mins))


@pytest.fixture
def standard_method_pickling() -> Iterator[None]:
    """Use pickle's own reducer for bound methods during the test.

    Twisted (imported by the web tests in the same pytest process) registers a global reducer for bound
    methods that cannot pickle classmethods, which dask's task graphs contain; the CLI never imports Twisted.
    """
    saved = copyreg.dispatch_table.pop(types.MethodType, None)
    yield
    if saved is not None:
        copyreg.dispatch_table[types.MethodType] = saved


@pytest.mark.slow
@pytest.mark.usefixtures("standard_method_pickling")
def test_runs_on_a_distributed_cluster(synth: SynthData, tmp_path: Path) -> None:
    from distributed import LocalCluster

    from analysis import cluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as lc:
        try:
            lazy = load(synth.data_dir, device="dev1", scheduler=lc.scheduler_address)
            client = cluster.connect(lc.scheduler_address)
            total = lazy["ch2"].sum()
            future = client.compute(total)
            assert future.result(timeout=60) == pytest.approx(
                load(synth.data_dir, device="dev1")["ch2"].sum()
            )
            assert client.run(lambda: 1)  # a worker process really did answer
            out = tmp_path / "cluster.png"
            assert (
                main(
                    [
                        "overview",
                        str(synth.session_a),
                        "--scheduler",
                        lc.scheduler_address,
                        "--out",
                        str(out),
                        "--width",
                        "500",
                        "--height",
                        "300",
                    ]
                )
                == 0
            )
            image = mpimg.imread(out)
            assert image.shape[:2] == (300, 500) and colour_pixels(image, COLORS[0]) > 300
        finally:
            cluster.close_all()
