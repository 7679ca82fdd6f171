"""Run the server's nodes unobserved and read their rates from /diagnostics instead.

`depth-ai run`'s monitor subscribes to every output; at the split pipeline's full load it took
a quarter of the server's one core and tipped it over (bench/RESULTS.md, stop 27). This starts
`depth-ai run --only inference,fusion --no-monitor` with the given runner arguments, listens to
the nodes' own /diagnostics (one small message a second each) and prints, in the runner's
closing-summary format (so bench/bench_multi_host.py reads it unchanged):
- /fused/points: lidar_fusion_node's `fused count` over the run, latency its `fused latency
  median (ms)` (stamp -> publish on the node's clock);
- /lidar_depth: its `fused with camera` (lidar_depth goes out with each such cloud);
- /depth_inference/depth: depth_inference's `depth count`, latency its `depth latency median
  (ms)` (receive -> publish).
Rates are what the nodes published, not what a subscriber received; the count is taken from
the first status after WARMUP_S to the last.

    python test/diag_observer.py SECONDS --domain-id N -- <depth-ai run arguments>
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from depth_ai_nodes.ros.dds import dds_environment  # noqa: E402

WARMUP_S = 8.0  # the first samples after start-up (compiling, discovery) are not counted
# output topic, diagnostics status, its count and latency keys (lidar_depth goes out with each
# cloud fused with a camera frame)
OUTPUTS = (("/depth_inference/depth", "depth_inference: inference", "depth count", "depth latency median (ms)"),
           ("/fused/points", "lidar_fusion_node: fusion", "fused count", "fused latency median (ms)"),
           ("/lidar_depth", "lidar_fusion_node: fusion", "fused with camera", "fused latency median (ms)"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("seconds", type=float)
    p.add_argument("--domain-id", type=int, required=True)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:cut])
    runner = argv[cut + 1:]  # after --: the depth-ai run command line
    if not runner:
        p.error("give the depth-ai run command line after --")
    os.environ.update(dds_environment(multi_host=True))
    os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
    proc = subprocess.Popen([*runner, "--no-monitor", "--duration", str(args.seconds + WARMUP_S)])
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    rclpy.init()
    node = rclpy.create_node("diag_observer")
    samples: dict[str, list[tuple[float, dict[str, str]]]] = {}

    def on_diag(msg: DiagnosticArray) -> None:
        now = time.monotonic()
        for st in msg.status:
            samples.setdefault(st.name, []).append((now, {kv.key: kv.value for kv in st.values}))

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
    start = time.monotonic()
    while proc.poll() is None:
        rclpy.spin_once(node, timeout_sec=0.2)
    node.destroy_node()
    rclpy.try_shutdown()

    def window(name: str) -> list[tuple[float, dict[str, str]]]:
        return [(t, v) for t, v in samples.get(name, []) if t >= start + WARMUP_S]

    def number(v: dict[str, str], key: str) -> float:
        try:
            return float(v.get(key, "nan"))
        except ValueError:
            return float("nan")

    for topic, status, count_key, latency_key in OUTPUTS:
        seen = window(status)
        if len(seen) < 2:
            print(f"[diag observer] summary {topic}: never published", flush=True)
            continue
        (t0, a), (t1, b) = seen[0], seen[-1]
        n = number(b, count_key) - number(a, count_key)
        lat = statistics.median(number(v, latency_key) for _, v in seen)
        print(f"[diag observer] summary {topic}: {n:.0f} messages, mean {n / (t1 - t0):.2f} Hz "
              f"(published, from /diagnostics), latency median {lat:.1f} ms", flush=True)
    return proc.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
