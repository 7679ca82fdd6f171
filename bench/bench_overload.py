"""Overload: each subscribing node fed at >= 2x its capacity keeps latency bounded (issue #11).

    python bench/bench_overload.py [--seconds 6] [--factor 2.0] [--points 200000]

For lidar_fusion_node (clouds + IR) and depth_inference_node (colour + depth, 640x480): the
latency of one input at a time is measured first (the processing period P), then the
capacity (outputs per second while inputs are offered at 4x the idle rate), then inputs
are sent at `factor` x capacity for `seconds`. Reported per node: P, 1 / capacity, offered
and output rates, p50 / p95 latency in units of P (goal: p95 <= 2) and of 1 / capacity (a
pipelined node takes in the next input before the last is out, so P > 1 / capacity), and
the drops the node counted in /diagnostics during that phase (goal: what did not come out).
Stamps are this process's clock at sending; outputs are read raw (their stamps only), so
this process does not limit the rate.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))

from depth_ai_nodes.ros.dds import clean_stale_fastdds_shm, dds_environment  # noqa: E402

os.environ.update(dds_environment())
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 200)))


def cdr_stamp_ns(raw: bytes) -> int:
    sec, nsec = np.frombuffer(raw[4:12], "<u4")
    return int(sec) * 10**9 + int(nsec)


def patch_stamp(raw: bytearray, ns: int) -> bytes:
    raw[4:12] = np.array(divmod(ns, 10**9), dtype="<u4").tobytes()
    return bytes(raw)


class Feed:
    """Pre-serialized inputs of one node; send(ns) publishes them all with stamp ns."""

    def __init__(self, node, items: list[tuple[str, type, object]], output: str, out_type: type) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rclpy.serialization import serialize_message

        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.pubs = [(node.create_publisher(t, topic, qos), bytearray(serialize_message(m))) for topic, t, m in items]
        self.out: dict[int, float] = {}
        node.create_subscription(out_type, output, lambda b: self.out.setdefault(cdr_stamp_ns(b), time.time_ns()),
                                 QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT), raw=True)

    def send(self, ns: int) -> None:
        for pub, raw in self.pubs:
            pub.publish(patch_stamp(raw, ns))


def drive(node, feed: Feed, rate_hz: float, seconds: float) -> tuple[list[int], list[float]]:
    from harness import spin_until

    sent: list[int] = []
    t0 = time.monotonic()
    k = 0
    while time.monotonic() - t0 < seconds:
        ns = time.time_ns()
        feed.send(ns)
        sent.append(ns)
        k += 1
        spin_until(node, lambda: False, max(0.0, t0 + k / rate_hz - time.monotonic()))
    spin_until(node, lambda: False, 1.5)
    lat = [(feed.out[s] - s) * 1e-9 for s in sent if s in feed.out]
    return sent, lat


def diag_value(node, name: str, key: str, timeout: float = 3.0) -> str | None:
    from diagnostic_msgs.msg import DiagnosticArray

    from harness import collect

    got = collect(node, {"/diagnostics": DiagnosticArray}, 1000, timeout, stop_when=lambda g: any(
        s.name == name and any(kv.key == key for kv in s.values) for _, a in g["/diagnostics"] for s in a.status))
    for _, arr in reversed(got["/diagnostics"]):
        for s in arr.status:
            if s.name == name:
                for kv in s.values:
                    if kv.key == key:
                        return kv.value
    return None


def measure(node, label: str, feed: Feed, seconds: float, factor: float, diag: tuple[str, str]) -> dict:
    _, lat_low = drive(node, feed, 2.0, 3.0)          # one at a time: latency when idle
    idle = float(np.median(lat_low))
    _, lat_flood = drive(node, feed, 4.0 / idle, 4.0)
    period = 4.0 / max(len(lat_flood), 1)             # capacity = output rate when flooded
    before = int(float(diag_value(node, *diag) or 0))
    sent, lat = drive(node, feed, factor / period, seconds)
    dropped = int(float(diag_value(node, *diag) or 0)) - before
    p50, p95 = (float(np.percentile(lat, 50)), float(np.percentile(lat, 95))) if lat else (float("nan"),) * 2
    return {"node": label, "period_ms": 1e3 * period, "idle_ms": 1e3 * idle,
            "offered_hz": len(sent) / seconds, "output_hz": len(lat) / seconds,
            "p50": p50 / idle, "p95": p95 / idle, "p95_cap": p95 / period, "sent": len(sent),
            "out": len(lat), "dropped": dropped}


def main() -> int:
    import rclpy
    from sensor_msgs.msg import Image, PointCloud2

    from fuzz_messages import valid_info
    from harness import NodeProcess, spin_until
    from depth_ai_nodes.ros import conversions as conv

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--factor", type=float, default=2.0, help="offered rate / capacity")
    p.add_argument("--points", type=int, default=200_000, help="points per LiDAR cloud")
    args = p.parse_args()
    rclpy.init()
    node = rclpy.create_node("bench_overload")
    rows = []
    try:
        rng = np.random.default_rng(0)
        n = args.points
        cols = {"x": rng.uniform(-0.5, 0.5, n).astype(np.float32), "y": rng.uniform(-0.4, 0.4, n).astype(np.float32),
                "z": rng.uniform(2.0, 3.0, n).astype(np.float32), "intensity": np.ones(n, np.float32)}
        ir = conv.array_to_image((np.arange(64 * 48) % 251).astype(np.uint8).reshape(48, 64), "mono8",
                                 frame_id="fz_cam", stamp=1)
        fusion_feed = Feed(node, [("/ov/info", type(valid_info(1)), valid_info(1)), ("/ov/ir", Image, ir),
                                  ("/ov/points", PointCloud2, conv.fields_to_pointcloud2(cols, frame_id="l", stamp=1))],
                           "/fused/points", PointCloud2)
        with NodeProcess.node("lidar_fusion_node", {
                "cloud_topic": "/ov/points", "ir_topic": "/ov/ir", "ir_info_topic": "/ov/info", "odom_topic": "''",
                "extrinsics_source": "parameters", "sync_reference": "stamp", "qos": "sensor_data"}) as fusion:
            spin_until(node, lambda: all(pb.get_subscription_count() for pb, _ in fusion_feed.pubs), 20.0)
            rows.append(measure(node, "lidar_fusion_node", fusion_feed, args.seconds, args.factor,
                                ("lidar_fusion_node: fusion", "dropped clouds (overload)")))
            assert fusion.alive(), fusion.output()[-2000:]
        from depth_ai_nodes.core.scene import CameraRig, SyntheticCamera, World

        cam = SyntheticCamera(World.default(seed=0), CameraRig(640, 480), seed=0)
        f = cam.render(5.0)
        color = conv.array_to_image(np.ascontiguousarray(f.color), "rgb8", frame_id="c", stamp=1)
        depth = conv.array_to_image(np.ascontiguousarray(f.depth_mm), "16UC1", frame_id="c", stamp=1)
        inf_feed = Feed(node, [("/ov/depth", Image, depth), ("/ov/color", Image, color)],
                        "/depth_inference/depth", Image)
        with NodeProcess.node("depth_inference_node", {
                "color_topic": "/ov/color", "color_info_topic": "/ov/color_info", "depth_topic": "/ov/depth",
                "intra_op_threads": 1}) as inference:
            spin_until(node, lambda: all(pb.get_subscription_count() for pb, _ in inf_feed.pubs), 30.0)
            drive(node, inf_feed, 2.0, 3.0)  # warm-up: the first runs allocate
            rows.append(measure(node, "depth_inference_node", inf_feed, args.seconds, args.factor,
                                ("depth_inference: inference", "frames_dropped")))
            assert inference.alive(), inference.output()[-2000:]
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        clean_stale_fastdds_shm()
    print(f"\noverload at {args.factor:g}x capacity, {args.seconds:g} s per node")
    print("| node | processing period P: latency when idle (ms) | 1 / capacity (ms) | offered (Hz) "
          "| output (Hz) | latency p50 / p95 (x P) | p95 (x 1/capacity) | sent / out | drops counted by the node |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['node']} | {r['idle_ms']:.1f} | {r['period_ms']:.1f} | {r['offered_hz']:.1f} | "
              f"{r['output_hz']:.1f} | {r['p50']:.2f} / {r['p95']:.2f} | {r['p95_cap']:.2f} | "
              f"{r['sent']} / {r['out']} | {r['dropped']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
