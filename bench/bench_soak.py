"""Soak and restart: memory stays flat, and the downstream nodes resume after an upstream
restart (issue #11: RSS within 5 % over a soak, outputs back within 3 s of the upstream's).

    python bench/bench_soak.py [--seconds 90] [--restarts 2]

camera_node (the built-in scene, prerendered), lidar_node (the scene's LiDAR),
depth_inference_node and lidar_fusion_node run as processes on our DDS profile. This process
samples each node's RSS (/proc/PID/status VmRSS) once a second, and reads the outputs raw
(/depth_inference/depth, /fused/points). After a warm-up, camera_node is killed (SIGKILL) and
started again `--restarts` times; for each restart the time from the camera's first new frame
to the next inference output and the next cloud fused with camera values is measured. Reported: RSS of each
node at the start and the end of the soak (medians of 10 s windows) and the change, and the
resume times.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))

from depth_ai_nodes.ros.dds import clean_stale_fastdds_shm, dds_environment  # noqa: E402

os.environ.update(dds_environment())
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 200)))

CAMERA = {"source": "synthetic", "synthetic.prerender_frames": 30, "enable_ground_truth": False}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def main() -> int:
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, PointCloud2

    from harness import NodeProcess, spin_until

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=90.0, help="soak length")
    p.add_argument("--restarts", type=int, default=2, help="camera_node restarts after the soak")
    args = p.parse_args()
    rclpy.init()
    node = rclpy.create_node("bench_soak")
    from rclpy.serialization import deserialize_message

    from depth_ai_nodes.ros import conversions as conv

    arrivals: dict[str, list[float]] = {"camera": [], "depth": [], "fused": []}
    for topic, key, typ in (("/camera/color/image_raw", "camera", Image), ("/depth_inference/depth", "depth", Image)):
        node.create_subscription(typ, topic, lambda _raw, k=key: arrivals[k].append(time.monotonic()),
                                 qos_profile_sensor_data, raw=True)

    def on_fused(raw: bytes) -> None:  # only clouds fused WITH the camera count as resumed
        ir = conv.pointcloud2_to_fields(deserialize_message(raw, PointCloud2), ["ir"])["ir"]
        if np.isfinite(ir).any():
            arrivals["fused"].append(time.monotonic())
    node.create_subscription(PointCloud2, "/fused/points", on_fused, qos_profile_sensor_data, raw=True)
    procs = {"camera_node": NodeProcess.node("camera_node", CAMERA),
             "lidar_node": NodeProcess.node("lidar_node", {}),
             "depth_inference_node": NodeProcess.node("depth_inference_node", {"intra_op_threads": 1}),
             "lidar_fusion_node": NodeProcess.node("lidar_fusion_node", {})}
    rss: dict[str, list[tuple[float, float]]] = {k: [] for k in procs}
    resumes: list[tuple[float, float]] = []
    try:
        if not spin_until(node, lambda: arrivals["depth"] and arrivals["fused"], 90.0):
            raise RuntimeError("the pipeline did not come up:\n" + "\n".join(
                f"{k}: {v.output()[-800:]}" for k, v in procs.items()))
        spin_until(node, lambda: False, 10.0)  # warm-up: caches, first allocations
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.seconds:
            for k, pr in procs.items():
                if k != "camera_node":
                    rss[k].append((time.monotonic() - t0, rss_mb(pr.proc.pid)))
            spin_until(node, lambda: False, 1.0)
        for _ in range(args.restarts):
            cam = procs["camera_node"]
            os.killpg(cam.proc.pid, signal.SIGKILL)
            cam.proc.wait()
            spin_until(node, lambda: False, 2.0)  # downstream without a camera for a while
            mark = time.monotonic()
            procs["camera_node"] = NodeProcess.node("camera_node", CAMERA)
            spin_until(node, lambda: any(t > mark for t in arrivals["camera"]), 60.0)
            first = min(t for t in arrivals["camera"] if t > mark)
            spin_until(node, lambda: any(t > first for t in arrivals["depth"])
                       and any(t > first for t in arrivals["fused"]), 30.0)
            nxt_depth = min((t for t in arrivals["depth"] if t > first), default=float("nan"))
            nxt_fused = min((t for t in arrivals["fused"] if t > first), default=float("nan"))
            resumes.append((nxt_depth - first, nxt_fused - first))
            spin_until(node, lambda: False, 3.0)
        alive = {k: pr.alive() for k, pr in procs.items()}
    finally:
        for pr in procs.values():
            pr.__exit__(None, None, None)
        node.destroy_node()
        rclpy.try_shutdown()
        clean_stale_fastdds_shm()
    print(f"\nsoak {args.seconds:g} s (after a 10 s warm-up), RSS medians of the first and last 10 s")
    print("| node | RSS start (MB) | RSS end (MB) | change |")
    print("|---|---|---|---|")
    for k, samples in rss.items():
        if not samples:
            continue
        a = np.array(samples)
        start = float(np.median(a[a[:, 0] < 10.0, 1]))
        end = float(np.median(a[a[:, 0] > a[-1, 0] - 10.0, 1]))
        print(f"| {k} | {start:.1f} | {end:.1f} | {100 * (end / start - 1):+.1f} % |")
    print("\ncamera_node killed (SIGKILL) and restarted: its first frame -> the next output downstream")
    print("| restart | inference depth (s) | fused cloud (s) |")
    print("|---|---|---|")
    for i, (d, f) in enumerate(resumes, 1):
        print(f"| {i} | {d:.2f} | {f:.2f} |")
    print("all nodes alive at the end:", alive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
