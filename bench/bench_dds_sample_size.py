"""How large a reliable message can cross a lossy link with the multi-host profile, as root.

    sudo python bench/bench_dds_sample_size.py [--sizes 0.9,3,4,5,6.3] [--loss 5] [--rate 10] [--seconds 10]
                                               [--kernel-buffers 212992,8388608]

One publisher of sensor_msgs/Image messages of each size (MB) at --rate Hz in the "robot"
network namespace, one subscriber in the "server" namespace (test/netns_hosts.py: veth,
private /dev/shm, nftables dropping --loss percent of the frames each way), both with
config/fastdds_multi_host.xml and reliable QoS (keep last 10), as `depth-ai run --multi-host`
sets them. Each size runs twice, on a clean link and with loss; printed: the rate received
(first to last message, as a share of the rate published: messages published before the two
found each other do not count), median latency (stamp -> received) and the longest gap.

Why: a 128x2048 LiDAR scan is ~6.3 MB. Fast DDS repairs a fragmented sample with NACKFRAG
submessages that each name missing fragments within 256 of the first one missing, so the
repair of a sample of N 1400-byte fragments takes about N / 256 round trips: the larger the
sample, the longer it stays incomplete, until the writer's history (keep last 10) overwrites
it. This measures where that happens.

--kernel-buffers runs every size once per value of the kernel's socket-buffer caps
(net.core.rmem_max and wmem_max, bytes; the values before the run are restored after it):
stock Linux caps them at 212992 bytes, below the 8 MiB the profile asks for
(depth_ai_nodes.ros.dds.socket_buffer_shortfall, which the nodes and the runner log).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
sys.path.insert(0, str(ROOT))


def _publish(size: int, rate: float, seconds: float) -> None:
    import rclpy
    from sensor_msgs.msg import Image

    from depth_ai_nodes.ros.qos import qos_from_name

    rclpy.init()
    node = rclpy.create_node("sample_size_pub")
    pub = node.create_publisher(Image, "/sample_size", qos_from_name("reliable"))
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


def _subscribe(seconds: float) -> None:
    import rclpy
    from sensor_msgs.msg import Image

    from depth_ai_nodes.ros.qos import qos_from_name

    rclpy.init()
    node = rclpy.create_node("sample_size_sub")
    arrivals: list[float] = []
    latency: list[float] = []

    def on_message(msg: Image) -> None:
        now = node.get_clock().now().nanoseconds
        arrivals.append(time.monotonic())
        latency.append((now - (msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)) / 1e6)

    node.create_subscription(Image, "/sample_size", on_message, qos_from_name("reliable"))
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        rclpy.spin_once(node, timeout_sec=0.1)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
    lat = statistics.median(latency) if latency else float("nan")
    print(f"received {len(arrivals)} rate {rate:.2f} latency {lat:.0f} gap {max(gaps, default=float('nan')):.2f}",
          flush=True)
    rclpy.shutdown()


def _run(size: int, loss: int, rate: float, seconds: float, domain: int) -> dict[str, float]:
    import netns_hosts as hosts

    from depth_ai_nodes.ros.dds import dds_environment

    env = {**os.environ, **dds_environment(multi_host=True), "ROS_DOMAIN_ID": str(domain)}
    me = [sys.executable, str(Path(__file__).resolve())]
    hosts.setup(loss)
    try:
        sub = subprocess.Popen(hosts.host_command(hosts.NS[1], [*me, "--role", "sub", "--seconds", str(seconds + 5)]),
                               env=env, stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        pub = subprocess.Popen(hosts.host_command(hosts.NS[0], [*me, "--role", "pub", "--size", str(size), "--rate",
                                                                str(rate), "--seconds", str(seconds)]),
                               env=env, stdout=subprocess.PIPE, text=True)
        published = pub.communicate(timeout=seconds + 120)[0].split()
        received = sub.communicate(timeout=seconds + 120)[0].split()
    finally:
        hosts.teardown()
    values = dict(zip(received[::2], received[1::2]))
    return {"published": float(published[-1]), "received": float(values.get("received", 0)),
            "rate": float(values.get("rate", 0)), "latency": float(values.get("latency", "nan")),
            "gap": float(values.get("gap", "nan"))}


def _set_kernel_buffers(value: int | None) -> dict[Path, str]:
    """Set both caps to `value` (None: leave them); returns the previous contents."""
    from depth_ai_nodes.ros.dds import KERNEL_BUFFER_LIMITS

    before = {p: p.read_text() for p in KERNEL_BUFFER_LIMITS.values()}
    if value is not None:
        for p in before:
            p.write_text(str(value))
    return before


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="0.9,3,4,5,6.3", help="message sizes, MB (comma list)")
    p.add_argument("--loss", type=int, default=5, help="percent of the frames dropped in each direction")
    p.add_argument("--rate", type=float, default=10.0, help="messages per second")
    p.add_argument("--seconds", type=float, default=10.0, help="publishing time per run")
    p.add_argument("--kernel-buffers", default="",
                   help="comma list of socket-buffer caps (bytes) to run each size under; default: as set")
    p.add_argument("--role", choices=("pub", "sub"), help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role == "pub":
        _publish(args.size, args.rate, args.seconds)
        return 0
    if args.role == "sub":
        _subscribe(args.seconds)
        return 0
    from netns_hosts import unavailable

    why = unavailable()
    if why:
        print(why, file=sys.stderr)
        return 2
    domain = 140 + os.getpid() % 50
    print(f"reliable sensor_msgs/Image at {args.rate:g} Hz for {args.seconds:g} s, config/fastdds_multi_host.xml, "
          f"robot -> server namespace; received rate as a share of {args.rate:g} Hz")
    caps = [int(c) for c in args.kernel_buffers.split(",") if c.strip()] or [None]
    print(f"| MB | kernel buffer cap | clean: rate | clean: latency ms | {args.loss} % loss: rate | "
          f"loss: latency ms | loss: longest gap s | loss: messages received |")
    print("|---|---|---|---|---|---|---|---|")
    for mb in (float(s) for s in args.sizes.split(",")):
        size = int(mb * 1e6)
        for cap in caps:
            before = _set_kernel_buffers(cap)
            try:
                shown = Path("/proc/sys/net/core/rmem_max").read_text().strip()
                clean = _run(size, 0, args.rate, args.seconds, domain)
                lossy = _run(size, args.loss, args.rate, args.seconds, domain)
            finally:
                for path, text in before.items():
                    path.write_text(text)
            print(f"| {mb:g} | {shown} | {clean['rate'] / args.rate:.2f} | {clean['latency']:.0f} | "
                  f"{lossy['rate'] / args.rate:.2f} | {lossy['latency']:.0f} | {lossy['gap']:.2f} | "
                  f"{lossy['received']:.0f} of {lossy['published']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
