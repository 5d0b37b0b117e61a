"""Issue #11.3, the short soak: kill -9 rounds with UART-like split writes, with and without a counter.

The long version is ``python -m tests.soak.kill_restart`` (1000 rounds; not part of CI).
"""

from __future__ import annotations

import pytest

from tests.soak.kill_restart import MODES, soak


@pytest.mark.parametrize("mode", MODES)
def test_no_torn_or_doubled_row_across_kill_9(tmp_path, mode):
    f = soak(tmp_path, mode, rounds=8, max_seconds=60, seed=11)
    assert f.rounds == 8 and f.committed > 0, f.summary()
    assert (f.corrupt, f.duplicates) == (0, 0), f.summary()
    if mode == "counter":
        assert f.uncounted == 0, f.summary()  # every line missing is counted in session.json (kill)
        assert set(f.lost) <= {"kill"}
    else:
        assert f.lost == {}, f.summary()  # nothing to count a kill's loss by, without a counter
    assert f.committed + f.missing == f.sent
