"""The pipeline split across two hosts over a lossy link (issue #12), as root.

    sudo python bench/bench_multi_host.py [--seconds 40] [--loss 5] [--lidar 128x2048] [--camera 640x480x30]

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
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
from netns_hosts import depth_ai_exe, run_split, runner_latencies, runner_rates, stalls, unavailable  # noqa: E402

# a lighter camera than the default 640x480 @ 30 (two runners and four nodes share 2 cores here)
PARAMS = """camera:
  ros__parameters:
    rgb_camera.color_profile: "{profile}"
    depth_module.depth_profile: "{profile}"
    depth_module.infra_profile: "{profile}"
    enable_ground_truth: false
    synthetic.prerender_frames: 30
lidar:
  ros__parameters:
    beams: {beams}
    columns: {columns}
"""
STREAMS = ["/depth_inference/depth", "/fused/points", "/lidar_depth"]


def run_one_host(seconds: float, domain: int, params: str, logs: Path) -> str:
    """The same four nodes on one host (one runner, the single-host profile): the reference
    for "a clean link as on one host"."""
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "params.yaml").write_text(params)
    done = subprocess.run([depth_ai_exe(sys.executable), "run", "--duration", str(seconds), "--no-preview",
                           "--status-period", "2", "--domain-id", str(domain), "--params-file",
                           str(logs / "params.yaml"), "--log-dir", str(logs / "nodes")],
                          capture_output=True, text=True, timeout=seconds + 120)
    return done.stdout + done.stderr


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--loss", type=int, default=5, help="percent of frames dropped in each direction")
    p.add_argument("--lidar", default="32x1024", help="synthetic LiDAR beams x columns (e.g. 128x2048)")
    p.add_argument("--camera", default="424x240x15", help="camera width x height x fps (e.g. 640x480x30)")
    args = p.parse_args()
    why = unavailable()
    if why:
        print(why, file=sys.stderr)
        return 2
    beams, columns = (int(v) for v in args.lidar.split("x"))
    params = PARAMS.format(beams=beams, columns=columns, profile=args.camera.replace("x", ","))
    domain = 90 + os.getpid() % 50
    logs = Path(tempfile.mkdtemp(prefix="multi_host_"))
    one_log = run_one_host(args.seconds, domain, params, logs / "one_host")
    clean_log = run_split(sys.executable, args.seconds, 0, domain, params, logs / "clean")
    lossy_log = run_split(sys.executable, args.seconds, args.loss, domain, params, logs / "lossy")
    one, clean, lossy = runner_rates(one_log), runner_rates(clean_log), runner_rates(lossy_log)
    stalled = stalls(lossy_log, STREAMS)
    print(f"\nsplit pipeline, two network namespaces, {args.seconds:g} s each, LiDAR {args.lidar}, camera {args.camera}; "
          f"server-side mean rates (Hz, first to last message)")
    print(f"| stream (received on the server) | one host | clean link | clean / one host | {args.loss} % frame "
          f"loss | loss / clean | stalls with loss |")
    print("|---|---|---|---|---|---|---|")
    nan = float("nan")
    for topic in STREAMS:
        o, a, b = one.get(topic, nan), clean.get(topic, nan), lossy.get(topic, nan)
        print(f"| {topic} | {o:.2f} | {a:.2f} | {a / o if o else nan:.2f} | {b:.2f} | {b / a if a else nan:.2f} "
              f"| {stalled[topic]} |")
    lat = [runner_latencies(x) for x in (one_log, clean_log, lossy_log)]
    print("\nlatency, header stamp -> received on the server, median ms (the camera and LiDAR stamp their "
          "frames; the LiDAR stamp is the start of its 100 ms sweep)")
    print(f"| stream | one host | clean link | {args.loss} % frame loss |")
    print("|---|---|---|---|")
    for topic in STREAMS:
        print(f"| {topic} | " + " | ".join(f"{x.get(topic, nan):.1f}" for x in lat) + " |")
    print(f"logs: {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
