#!/usr/bin/env python3
"""Cross-process latency per camera_node stream (stamp -> receive), shipped
DDS profile vs Fast DDS default transports, and delivery rate.

camera_node publishes the built-in scene at 640x480, 30 fps, with aligned
depth, from `synthetic.prerender_frames` (rendered once, replayed: the source
costs ~nothing, so the figures are the node's and DDS's). A subscriber in
another process takes receive time - header stamp per message. The stamp is
taken when the source hands the frameset over, so latency includes the
node's conversion, the registration (aligned depth, published last) and DDS.

    python bench/bench_latency.py [--seconds 10] [--fps 30]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))

STREAMS = {"depth": "/camera/depth/image_rect_raw", "color": "/camera/color/image_raw",
           "infra1": "/camera/infra1/image_rect_raw",
           "aligned_depth": "/camera/aligned_depth_to_color/image_raw"}


def subscriber(seconds: float, warmup: float) -> dict:
    """Run in a child process: per-stream latencies (ms) and counts, plus the node's
    published count from /diagnostics, over `seconds` after `warmup`."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("latency_probe")
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
    lat: dict[str, list[float]] = {k: [] for k in STREAMS}
    stamps: dict[str, set[int]] = {k: set() for k in STREAMS}
    published: list[tuple[float, int]] = []
    t_start = time.monotonic() + warmup
    t_end = t_start + seconds

    def on_image(msg, key):
        now = time.time()
        if t_start <= time.monotonic() <= t_end:
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            lat[key].append((now - stamp) * 1000.0)
            stamps[key].add(msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec)

    def on_diag(arr):
        for s in arr.status:
            if s.name.endswith(": device"):
                values = {kv.key: kv.value for kv in s.values}
                if "published" in values:
                    published.append((time.monotonic(), int(values["published"])))

    subs = [node.create_subscription(Image, topic, lambda m, k=key: on_image(m, k), qos)
            for key, topic in STREAMS.items()]
    subs.append(node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10))
    while time.monotonic() < t_end + 1.5:
        rclpy.spin_once(node, timeout_sec=0.05)
    window = [n for t, n in published if t_start - 0.5 <= t <= t_end + 1.5]
    sent = (window[-1] - window[0]) if len(window) >= 2 else 0
    span = [t for t, _ in published if t_start - 0.5 <= t <= t_end + 1.5]
    sent_rate = sent / (span[-1] - span[0]) if len(span) >= 2 and span[-1] > span[0] else 0.0
    out = {"sent_rate_hz": sent_rate, "streams": {}}
    for key, values in lat.items():
        arr = np.array(values)
        out["streams"][key] = {
            "n": len(arr), "rate_hz": len(stamps[key]) / seconds,
            "median_ms": float(np.median(arr)) if len(arr) else float("nan"),
            "p95_ms": float(np.percentile(arr, 95)) if len(arr) else float("nan")}
    node.destroy_node()
    rclpy.shutdown()
    return out


def run_config(profile: bool, seconds: float, fps: int, domain: str) -> dict:
    from depth_ai_nodes.ros.dds import dds_environment
    from harness import executable, ros_args

    base = {k: v for k, v in os.environ.items() if k != "FASTDDS_DEFAULT_PROFILES_FILE"}
    env = dds_environment(base, profile=profile)
    env["ROS_DOMAIN_ID"] = domain
    profile_str = f"640,480,{fps}"
    params = {"source": "synthetic", "synthetic.prerender_frames": 30,
              "align_depth.enable": True, "enable_ground_truth": False,
              "rgb_camera.color_profile": profile_str, "depth_module.depth_profile": profile_str,
              "depth_module.infra_profile": profile_str}
    node = subprocess.Popen([executable("camera_node"), *ros_args(params)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        probe = subprocess.run([sys.executable, __file__, "--subscriber", "--seconds",
                                str(seconds)], env=env, capture_output=True, text=True,
                               timeout=seconds + 60)
        if probe.returncode != 0:
            raise RuntimeError(probe.stderr[-2000:])
        return json.loads(probe.stdout.strip().splitlines()[-1])
    finally:
        node.send_signal(2)
        node.wait(timeout=15)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--subscriber", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.subscriber:
        print(json.dumps(subscriber(args.seconds, warmup=3.0)))
        return 0
    domain = os.environ.get("ROS_DOMAIN_ID", "13")
    results = {name: run_config(profile, args.seconds, args.fps, domain)
               for name, profile in (("shipped SHM profile", True),
                                     ("default transports", False))}
    print(f"camera_node 640x480 color+IR+depth+aligned @ {args.fps} fps, {args.seconds:.0f} s "
          f"per configuration; latency = receive - stamp, other process; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'transport':22} {'stream':14} {'median ms':>10} {'p95 ms':>8} {'rate Hz':>8} "
          f"{'delivered':>9}")
    for name, res in results.items():
        for key, s in res["streams"].items():
            sent = res["sent_rate_hz"]
            delivered = s["rate_hz"] / sent if sent else float("nan")
            print(f"{name:22} {key:14} {s['median_ms']:10.2f} {s['p95_ms']:8.2f} "
                  f"{s['rate_hz']:8.1f} {delivered:9.0%}")
    shm = results["shipped SHM profile"]["streams"]["depth"]["median_ms"]
    print(f"goal: depth median <= 3 ms with the shipped profile: {shm:.2f} ms "
          f"({'met' if shm <= 3.0 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
