"""A reduced run of the malformed-message fuzzer (bench/bench_fuzz.py sends >= 10,000):
both subscribing nodes survive, count every rejection in /diagnostics, and give the same
output on valid input afterwards."""
from __future__ import annotations

import pytest

from fuzz_messages import run_fuzz

pytestmark = pytest.mark.ros


def test_malformed_messages_are_rejected_counted_and_leave_the_nodes_correct(ros_node):
    res = run_fuzz(ros_node, count=600, seed=11)
    assert all(res.alive.values()), {n: log[-2000:] for n, log in res.logs.items()}
    for name, sent in res.sent.items():
        # every malformed message the node took was rejected and counted; what DDS overwrote in
        # a full history before the node took it shows as a sequence gap, also counted
        assert res.rejected[name] + res.lost[name] >= sent, (name, sent, res.rejected[name], res.lost[name])
        assert res.lost[name] <= 0.05 * sent
        assert "Traceback" not in res.logs[name], res.logs[name][-3000:]
    assert res.fused_same_after and res.depth_same_after
    assert {"malformed", "unsupported", "non_finite", "out_of_range", "empty", "bad_stamp"} <= {
        r for by in res.by_reason.values() for r, n in by.items() if n > 0}
