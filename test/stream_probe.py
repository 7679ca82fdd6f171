"""Count what crosses the link: subscribe to the camera's and the LiDAR's streams (raw, or
image_transport compressed and point_cloud_transport zstd) with the QoS `depth-ai run
--multi-host` gives their readers and print, per topic, messages received, rate, bandwidth (the messages' data bytes per second),
median latency (header stamp -> receipt) and the longest gap. Run by bench/bench_multi_host.py --streams and test_multi_host.py on the "server" while the robot runs
`depth-ai run --only camera,lidar`; the DDS environment is the runner's (--multi-host).

    python test/stream_probe.py SECONDS [--compressed] [--domain-id N]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from depth_ai_nodes.ros.dds import dds_environment  # noqa: E402

IMAGES = ("/camera/color/image_raw", "/camera/aligned_depth_to_color/image_raw", "/camera/infra1/image_rect_raw")
CLOUD = "/lidar/points"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("seconds", type=float)
    p.add_argument("--compressed", action="store_true")
    p.add_argument("--domain-id", type=int, default=None)
    args = p.parse_args()
    os.environ.update(dds_environment(multi_host=True))
    if args.domain_id is not None:
        os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
    import rclpy
    from sensor_msgs.msg import CompressedImage, Image, PointCloud2

    from depth_ai_nodes.ros.qos import qos_from_name

    from depth_ai_nodes.ros.conversions import compressed_point_cloud2_type

    topics: dict[str, type] = {f"{CLOUD}/zstd": compressed_point_cloud2_type()} if args.compressed \
        else {CLOUD: PointCloud2}
    for t in IMAGES:
        if args.compressed:
            topics[f"{t}/{'compressedDepth' if 'depth' in t else 'compressed'}"] = CompressedImage
        else:
            topics[t] = Image
    rclpy.init()
    node = rclpy.create_node("stream_probe")
    got: dict[str, list[tuple[float, float, int]]] = {t: [] for t in topics}

    def on(topic: str):
        def cb(msg) -> None:
            size = len(msg.compressed_data) if hasattr(msg, "compressed_data") else len(msg.data)
            got[topic].append((time.time(), msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec, size))
        return cb

    for topic, typ in topics.items():
        node.create_subscription(typ, topic, on(topic), qos_from_name("reliable"))
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    for topic, rows in got.items():
        if len(rows) < 2:
            print(f"summary {topic}: {len(rows)} messages")
            continue
        lat = sorted(1e3 * (r - s) for r, s, _ in rows)
        gap = max(b[0] - a[0] for a, b in zip(rows, rows[1:]))
        span = rows[-1][0] - rows[0][0]
        rate = (len(rows) - 1) / span
        mbps = sum(n for _, _, n in rows[1:]) / span / 1e6  # data bytes of the messages after the first
        print(f"summary {topic}: {len(rows)} messages, mean {rate:.2f} Hz, {mbps:.2f} MB/s, latency median "
              f"{lat[len(lat) // 2]:.1f} ms, longest gap {gap:.2f} s")
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
