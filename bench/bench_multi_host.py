"""The pipeline split across two hosts over a lossy link (issue #12), as root.

    sudo python bench/bench_multi_host.py [--seconds 40] [--loss 5]

Two network namespaces ("robot" and "server") joined by a veth pair with their own
addresses, each with its own /dev/shm (so Fast DDS cannot take a shared-memory shortcut
between them): `depth-ai run --only camera,lidar --multi-host` on the robot, `depth-ai run
--only inference,fusion --multi-host` on the server. The server's runner reports the mean rate
of every output it receives (its closing summary); the run is made on a clean link and with --loss percent of the
frames dropped in each direction (nftables, `numgen random mod 100 < loss drop`: this kernel
has no netem). Reported per stream: rate on the clean link, with loss, and their ratio
(goal >= 0.8). The camera runs at 424x240 15 fps (two runners and four nodes share the
2-core reference machine).
Needs root, iproute2 and nftables (Debian: apt-get install nftables).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"summary (\S+): (\d+) messages, mean ([\d.]+) Hz")
# a lighter camera than the default 640x480 @ 30 (two runners and four nodes share 2 cores here)
CAMERA_PARAMS = """camera:
  ros__parameters:
    rgb_camera.color_profile: "424,240,15"
    depth_module.depth_profile: "424,240,15"
    depth_module.infra_profile: "424,240,15"
    enable_ground_truth: false
    synthetic.prerender_frames: 30
"""
NS = ("dai_robot", "dai_server")
ADDR = {"dai_robot": "192.168.77.1/24", "dai_server": "192.168.77.2/24"}
DEV = {"dai_robot": "dai_r0", "dai_server": "dai_s0"}


def sh(*cmd: str) -> None:
    subprocess.run(list(cmd), check=True, capture_output=True)


def setup(loss: int) -> None:
    teardown()
    for ns in NS:
        sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", DEV[NS[0]], "type", "veth", "peer", "name", DEV[NS[1]])
    for ns in NS:
        sh("ip", "link", "set", DEV[ns], "netns", ns)
        sh("ip", "-n", ns, "addr", "add", ADDR[ns], "dev", DEV[ns])
        sh("ip", "-n", ns, "link", "set", DEV[ns], "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", DEV[ns])
        if loss > 0:
            sh("ip", "netns", "exec", ns, "nft", "add", "table", "netdev", "lossy")
            sh("ip", "netns", "exec", ns, "nft", f"add chain netdev lossy in {{ type filter hook ingress device "
               f"{DEV[ns]} priority 0; }}")
            sh("ip", "netns", "exec", ns, "nft", "add", "rule", "netdev", "lossy", "in", "numgen", "random", "mod",
               "100", "<", str(loss), "drop")


def teardown() -> None:
    for ns in NS:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def host_command(ns: str, args: list[str]) -> list[str]:
    """A command in namespace `ns` with its own private /dev/shm (a separate host)."""
    inner = "mount -t tmpfs tmpfs /dev/shm && exec " + " ".join(args)
    return ["ip", "netns", "exec", ns, "unshare", "-m", "--propagation", "private", "sh", "-c", inner]


def run_split(seconds: float, loss: int, domain: int) -> dict[str, float]:
    setup(loss)
    exe = shutil.which("depth-ai", path=str(Path(sys.executable).parent)) or "depth-ai"
    logs = Path(tempfile.mkdtemp(prefix="multi_host_"))
    (logs / "camera.yaml").write_text(CAMERA_PARAMS)
    common = ["--multi-host", "--no-preview", "--status-period", "5", "--domain-id", str(domain),
              "--params-file", str(logs / "camera.yaml")]
    robot = subprocess.Popen(host_command(NS[0], [exe, "run", "--only", "camera,lidar", "--duration",
                                                  str(seconds + 10), "--log-dir", str(logs / "robot"), *common]),
                             stdout=open(logs / "robot.out", "w"), stderr=subprocess.STDOUT)
    server = subprocess.Popen(host_command(NS[1], [exe, "run", "--only", "inference,fusion", "--duration",
                                                   str(seconds), "--log-dir", str(logs / "server"), *common]),
                              stdout=open(logs / "server.out", "w"), stderr=subprocess.STDOUT)
    try:
        server.wait(timeout=seconds + 120)
    finally:
        robot.terminate()
        try:
            robot.wait(timeout=30)
        except subprocess.TimeoutExpired:
            robot.kill()
        teardown()
    rates: dict[str, float] = {}
    for m in SUMMARY.finditer((logs / "server.out").read_text(errors="replace")):
        rates[m.group(1)] = float(m.group(3))  # the runner's mean rate over the run
    rates["_log"] = str(logs)  # type: ignore[assignment]
    return rates


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--loss", type=int, default=5, help="percent of frames dropped in each direction")
    args = p.parse_args()
    if os.geteuid() != 0 or not shutil.which("nft"):
        print("needs root and nftables (apt-get install nftables)", file=sys.stderr)
        return 2
    domain = 90 + os.getpid() % 50
    clean = run_split(args.seconds, 0, domain)
    lossy = run_split(args.seconds, args.loss, domain)
    print(f"\nsplit pipeline, two network namespaces, {args.seconds:g} s each; server-side rates (Hz)")
    print(f"| stream (received on the server) | clean link | {args.loss} % frame loss | ratio |")
    print("|---|---|---|---|")
    for topic in ("/depth_inference/depth", "/fused/points", "/lidar_depth", "/lidar_depth_color"):
        a, b = clean.get(topic, float("nan")), lossy.get(topic, float("nan"))
        print(f"| {topic} | {a:.2f} | {b:.2f} | {b / a if a else float('nan'):.2f} |")
    print(f"logs: {clean['_log']} {lossy['_log']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
