"""Fuzz the subscribing nodes with >= 10,000 seeded malformed messages over real DDS (issue #11).

    python bench/bench_fuzz.py [--count 10000] [--seed 0] [--rate 1500]

lidar_fusion_node and depth_inference_node run as processes on our DDS profile; this
process checks their output on valid input, sends the malformed messages over all their
input topics (test/fuzz_messages.py says what is broken in each), then reports per node:
sent, rejected as counted in /diagnostics (per reason), alive, and whether valid input
gives the same output as before. Exit 1 when any of those fails.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))

from depth_ai_nodes.ros.dds import clean_stale_fastdds_shm, dds_environment  # noqa: E402

os.environ.update(dds_environment())
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 200)))


def main() -> int:
    import rclpy

    from fuzz_messages import run_fuzz

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=float, default=400.0, help="malformed messages per second")
    args = p.parse_args()
    rclpy.init()
    node = rclpy.create_node("bench_fuzz")
    try:
        res = run_fuzz(node, args.count, args.seed, args.rate, progress=lambda s: print(s, flush=True))
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        clean_stale_fastdds_shm()
    print(f"\n{sum(res.sent.values())} malformed messages in {res.seconds:.1f} s (seed {args.seed})")
    print("| node | sent | rejected (diagnostics) | lost before the node (sequence gaps, superseded) | by reason | alive "
          "| same output after |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for name, sent in res.sent.items():
        same = res.fused_same_after if name == "lidar_fusion_node" else res.depth_same_after
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(res.by_reason[name].items()) if v)
        print(f"| {name} | {sent} | {res.rejected[name]} | {res.lost[name]} | {reasons} | {res.alive[name]} "
              f"| {same} |")
        ok &= res.alive[name] and same and res.rejected[name] + res.lost[name] >= sent
        crashes = res.logs[name].count("Traceback")
        if crashes:
            ok = False
            print(f"{name}: {crashes} traceback(s) in its log")
    print("verdict:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
