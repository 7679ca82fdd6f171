"""How large a reliable message can cross a lossy link with the multi-host profile, as root.

    sudo python bench/bench_dds_sample_size.py [--sizes 0.9,3,4,5,6.3] [--loss 5] [--rate 10] [--seconds 10]
                                               [--pub-depth N] [--sub-depth N] [--kernel-buffers 212992,8388608]

One publisher of sensor_msgs/Image messages of each size (MB) at --rate Hz in the "robot"
network namespace, one subscriber in the "server" namespace (test/netns_hosts.py: veth,
private /dev/shm, nftables dropping --loss percent of the frames each way), both with
config/fastdds_multi_host.xml and reliable QoS as `depth-ai run --multi-host` sets them (keep
last 10 unless --pub-depth / --sub-depth say otherwise: --multi-host gives the camera's writers
30 and the LiDAR's 40, the nodes' `qos_depth`). The pair is test/sample_link.py, which the CI
test of large images across a lossy link (test/test_multi_host.py) runs too. Each size runs twice, on a clean link and with loss; printed: the rate received
(first to last message, as a share of the rate published: messages published before the two
found each other do not count), median latency (stamp -> received) and the longest gap.

Why: a 128x2048 LiDAR scan is ~6.3 MB. Fast DDS repairs a fragmented sample with NACKFRAG
submessages that each name missing fragments within 256 of the first one missing, so the
repair of a sample of N 1400-byte fragments takes about N / 256 round trips: the larger the
sample, the longer it stays incomplete, until the writer's history overwrites it. This measures
where that happens, and which history depth is enough.

--kernel-buffers runs every size once per value of the kernel's socket-buffer caps
(net.core.rmem_max and wmem_max, bytes; the values before the run are restored after it):
stock Linux caps them at 212992 bytes, below the 8 MiB the profile asks for
(depth_ai_nodes.ros.dds.socket_buffer_shortfall, which the nodes and the runner log).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
sys.path.insert(0, str(ROOT))


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
    p.add_argument("--pub-depth", type=int, default=0,
                   help="the writer's history depth (0: reliable's own, 10; --multi-host: camera 30, LiDAR 40)")
    p.add_argument("--sub-depth", type=int, default=0, help="the reader's history depth (0: 10)")
    p.add_argument("--kernel-buffers", default="",
                   help="comma list of socket-buffer caps (bytes) to run each size under; default: as set")
    args = p.parse_args()
    from netns_hosts import unavailable
    from sample_link import run_pair

    why = unavailable()
    if why:
        print(why, file=sys.stderr)
        return 2
    domain = 140 + os.getpid() % 50
    print(f"reliable sensor_msgs/Image at {args.rate:g} Hz for {args.seconds:g} s, config/fastdds_multi_host.xml, "
          f"history depth writer {args.pub_depth or 10} / reader {args.sub_depth or 10}, "
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
                clean = run_pair(size, 0, args.rate, args.seconds, domain, args.pub_depth, args.sub_depth)
                lossy = run_pair(size, args.loss, args.rate, args.seconds, domain, args.pub_depth, args.sub_depth)
            finally:
                for path, text in before.items():
                    path.write_text(text)
            print(f"| {mb:g} | {shown} | {clean['rate'] / args.rate:.2f} | {clean['latency']:.0f} | "
                  f"{lossy['rate'] / args.rate:.2f} | {lossy['latency']:.0f} | {lossy['gap']:.2f} | "
                  f"{lossy['received']:.0f} of {lossy['published']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
