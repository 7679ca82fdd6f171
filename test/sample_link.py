"""One reliable publisher of large messages on the "robot", one subscriber on the "server".

    python test/sample_link.py --role pub --size BYTES --rate HZ --seconds S [--depth N]
    python test/sample_link.py --role sub --seconds S [--depth N]

The two namespaces of netns_hosts.py, both with the multi-host Fast DDS profile as `depth-ai
run --multi-host` gives it, sensor_msgs/Image messages of `size` bytes with reliable QoS. The
writer's history depth is the setting that decides whether a large message survives a lossy
link (a writer keeps a message until every reader holds all of it; repairing a 2.7 MB image
with 5 % loss outlasts ten frames at 30 Hz), so both depths are arguments: the nodes take
theirs from `qos_depth`, built by the same `output_qos`.

run_pair() is what bench/bench_dds_sample_size.py and test/test_multi_host.py call.
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


def publish(size: int, rate: float, seconds: float, depth: int) -> None:
    import rclpy
    from sensor_msgs.msg import Image

    from depth_ai_nodes.ros.qos import output_qos

    rclpy.init()
    node = rclpy.create_node("sample_size_pub")
    pub = node.create_publisher(Image, "/sample_size", output_qos("reliable", depth))
    msg = Image(height=1, width=size, step=size, encoding="mono8", data=bytes(size))
    sent, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        start = time.monotonic()
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        sent += 1
        time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - start)))
    print(f"published {sent}", flush=True)
    rclpy.shutdown()


def subscribe(seconds: float, depth: int) -> None:
    import rclpy
    from sensor_msgs.msg import Image

    from depth_ai_nodes.ros.qos import output_qos

    rclpy.init()
    node = rclpy.create_node("sample_size_sub")
    arrivals: list[float] = []
    latency: list[float] = []

    def on_message(msg: Image) -> None:
        now = node.get_clock().now().nanoseconds
        arrivals.append(time.monotonic())
        latency.append((now - (msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)) / 1e6)

    node.create_subscription(Image, "/sample_size", on_message, output_qos("reliable", depth))
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        rclpy.spin_once(node, timeout_sec=0.1)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
    lat = statistics.median(latency) if latency else float("nan")
    print(f"received {len(arrivals)} rate {rate:.2f} latency {lat:.0f} gap {max(gaps, default=float('nan')):.2f}",
          flush=True)
    rclpy.shutdown()


def run_pair(size: int, loss: int, rate: float, seconds: float, domain: int,
             pub_depth: int = 0, sub_depth: int = 0) -> dict[str, float]:
    """Publisher on the robot, subscriber on the server, `loss` percent of the frames dropped each
    way; depths 0: the reliable QoS's own (10). Returns published / received counts, the received
    rate (first to last message, Hz), median latency (ms) and the longest gap (s)."""
    import netns_hosts as hosts

    from depth_ai_nodes.ros.dds import dds_environment

    env = {**os.environ, **dds_environment(multi_host=True), "ROS_DOMAIN_ID": str(domain)}
    me = [sys.executable, str(Path(__file__).resolve())]
    hosts.setup(loss)
    try:
        sub = subprocess.Popen(hosts.host_command(hosts.NS[1], [*me, "--role", "sub", "--seconds", str(seconds + 5),
                                                                "--depth", str(sub_depth)]),
                               env=env, stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        pub = subprocess.Popen(hosts.host_command(hosts.NS[0], [*me, "--role", "pub", "--size", str(size), "--rate",
                                                                str(rate), "--seconds", str(seconds),
                                                                "--depth", str(pub_depth)]),
                               env=env, stdout=subprocess.PIPE, text=True)
        published = pub.communicate(timeout=seconds + 120)[0].split()
        received = sub.communicate(timeout=seconds + 120)[0].split()
    finally:
        hosts.teardown()
    values = dict(zip(received[::2], received[1::2]))
    return {"published": float(published[-1]) if published else 0.0,
            "received": float(values.get("received", 0)), "rate": float(values.get("rate", 0)),
            "latency": float(values.get("latency", "nan")), "gap": float(values.get("gap", "nan"))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--role", choices=("pub", "sub"), required=True)
    p.add_argument("--size", type=int, default=0, help="message bytes (pub)")
    p.add_argument("--rate", type=float, default=10.0, help="messages per second (pub)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--depth", type=int, default=0, help="history depth (0: the reliable QoS's own)")
    args = p.parse_args()
    if args.role == "pub":
        publish(args.size, args.rate, args.seconds, args.depth)
    else:
        subscribe(args.seconds, args.depth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
