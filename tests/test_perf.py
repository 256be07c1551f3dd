"""make perf's query-efficiency rule: an attack reaches a level when it holds it to the end."""

import math
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from perf import _holds_from  # noqa: E402  (make perf's script, not part of the installed package)


def test_holds_from_ignores_a_level_touched_and_lost():
    trace = pd.DataFrame({"per_identity": [0, 20, 40, 60, 80], "acc@1": [0.1, 0.5, 0.3, 0.5, 0.6]})
    assert _holds_from(trace, 0.5) == 60
    assert _holds_from(trace, 0.1) == 0
    assert _holds_from(trace, 0.7) == math.inf
    assert _holds_from(trace.assign(**{"acc@1": [0.1, 0.2, 0.3, 0.4, 0.30000001]}), 0.3) == 40  # float32 sums
