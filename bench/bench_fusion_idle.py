#!/usr/bin/env python3
"""lidar_fusion_node's CPU while it only receives camera frames, vs a bare rclpy subscriber.

What the node costs before any cloud is fused: a publisher in this process sends the IR and
colour images (JPEG, image_transport's compressed) with their camera_infos at --fps, as
camera_node does under --compressed; lidar_fusion_node (colour on, no LiDAR) and a bare rclpy
node subscribing to the same four topics (`rclpy.spin`: rclpy's default, Python executor; the
node runs whatever DEPTH_AI_EXECUTOR picks) run side by side as processes. CPU = utime + stime
from /proc over the same window. --fps 0 measures them idle (nothing published).

    python bench/bench_fusion_idle.py [--seconds 10] [--fps 30]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from depth_ai_nodes.ros.dds import dds_environment  # noqa: E402

os.environ.update(dds_environment())
os.environ.setdefault("ROS_DOMAIN_ID", "14")
TOPICS = {"/camera/infra1/image_rect_raw/compressed": "CompressedImage", "/camera/infra1/camera_info": "CameraInfo",
          "/camera/color/image_raw/compressed": "CompressedImage", "/camera/color/camera_info": "CameraInfo"}
BARE = r'''
import sys, rclpy
from rclpy.qos import qos_profile_sensor_data as QOS
from sensor_msgs.msg import CameraInfo, CompressedImage
rclpy.init(); node = rclpy.create_node("bare_subscriber")
for topic, typ in eval(sys.argv[1]).items():
    node.create_subscription({"CameraInfo": CameraInfo, "CompressedImage": CompressedImage}[typ], topic,
                             lambda m: None, QOS)
try:
    rclpy.spin(node)
except KeyboardInterrupt:
    pass
'''


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=30.0)
    args = ap.parse_args()
    import rclpy
    from rclpy.qos import qos_profile_sensor_data as QOS
    from sensor_msgs.msg import CameraInfo, CompressedImage

    from depth_ai_nodes.core.compressed import encode_compressed
    from depth_ai_nodes.ros import conversions as conv
    from depth_ai_nodes.sources.synthetic import SyntheticSource

    src = SyntheticSource(real_time=False)
    src.start()
    fs = src.read(5.0)
    rclpy.init()
    node = rclpy.create_node("bench_camera_frames")
    (ir_fmt, ir_data), (color_fmt, color_data) = encode_compressed(fs.ir, "mono8"), encode_compressed(fs.color, "rgb8")
    msgs = [CompressedImage(format=ir_fmt, data=ir_data),
            conv.model_to_camera_info(fs.ir_model, frame_id="camera_infra1_optical_frame"),
            CompressedImage(format=color_fmt, data=color_data),
            conv.model_to_camera_info(fs.color_model, frame_id="camera_color_optical_frame")]
    pubs = [(node.create_publisher(CameraInfo if typ == "CameraInfo" else CompressedImage, topic, QOS), msg)
            for (topic, typ), msg in zip(TOPICS.items(), msgs)]
    fusion = subprocess.Popen(
        [sys.executable, "-m", "depth_ai_nodes.nodes.lidar_fusion_node", "--ros-args",
         "-p", "color_topic:=/camera/color/image_raw", "-p", "ir_transport:=compressed",
         "-p", "color_transport:=compressed", "-p", "extrinsics_source:=parameters",
         "-p", "extrinsics_matrix:=[1.,0.,0.,0.,0.,1.,0.,0.,0.,0.,1.,0.,0.,0.,0.,1.]"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bare = subprocess.Popen([sys.executable, "-c", BARE, repr(TOPICS)])
    try:
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline and not all(p.get_subscription_count() >= 2 for p, _ in pubs):
            rclpy.spin_once(node, timeout_sec=0.1)
        time.sleep(3.0)  # both settled (imports done, first frames taken)
        start = {p.pid: cpu_seconds(p.pid) for p in (fusion, bare)}
        t0 = t = time.monotonic()
        sent = 0
        while time.monotonic() - t0 < args.seconds:
            if args.fps <= 0:
                time.sleep(0.1)
                continue
            t += 1.0 / args.fps
            time.sleep(max(0.0, t - time.monotonic()))
            stamp = node.get_clock().now().to_msg()
            for pub, msg in pubs:
                msg.header.stamp = stamp
                pub.publish(msg)
            sent += 1
        wall = time.monotonic() - t0
        used = {p.pid: cpu_seconds(p.pid) - start[p.pid] for p in (fusion, bare)}
    finally:
        for p in (fusion, bare):
            p.send_signal(signal.SIGINT)
            p.wait(timeout=20)
    f, b = 100 * used[fusion.pid] / wall, 100 * used[bare.pid] / wall
    print(f"{sent} framesets ({len(TOPICS)} messages each) in {wall:.1f} s at {args.fps:g} fps: "
          f"lidar_fusion_node {f:.1f} % of a core, bare rclpy subscriber {b:.1f} %, ratio {f / b if b else float('nan'):.2f}x")
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
