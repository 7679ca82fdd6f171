"""The pipeline split across two hosts over a lossy link (issue #12), as root.

    sudo python bench/bench_multi_host.py [--seconds 40] [--loss 5] [--lidar 128x2048] [--camera 640x480x30]
                                          [--compressed] [--streams] [--lidar-files] [--repeat N]
                                          [--shared-cpus] [--params YAML] [--observe diagnostics]

Two network namespaces ("robot" and "server") joined by a veth pair with their own
addresses, each with its own /dev/shm (so Fast DDS cannot take a shared-memory shortcut
between them): `depth-ai run --only camera,lidar --multi-host` on the robot, `depth-ai run
--only inference,fusion --multi-host` on the server. Three runs: the same two runners on one
host (shared memory between them: the reference), across the link, and across the link with
--loss percent of the frames dropped in each direction (nftables, `numgen random mod 100 <
loss drop`: this kernel has no netem). The server's runner reports the mean rate and latency of
every output it receives, both runners each node's CPU (their closing summaries).

Each "host" gets its own half of this machine's cores (taskset), as two computers would: with
both on every core (--shared-cpus), the robot's cost of sending (the network stack and DDS
fragmentation) comes out of the server's inference budget, which measures the machine and not
the link. The camera runs at 424x240 15 fps by default (four nodes on 2 cores here).
--lidar-files: the robot's LiDAR plays scans of the built-in scene rendered beforehand (.bin
files, source files) instead of rendering them live, so a 128x2048 LiDAR at 10 Hz and a camera
at 640x480 30 fps (pre-rendered frames) fit the robot's one core; with --streams this gives
per-stream rate, bandwidth and latency at the issue's full load.
Needs root, iproute2 and nftables (Debian: apt-get install nftables).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
from netns_hosts import (host_cpus, probe_bandwidth, probe_gaps, run_split, runner_cpu,  # noqa: E402
                         runner_latencies, runner_rates, stalls, unavailable)

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
# the LiDAR from files rendered beforehand (--lidar-files): nothing to render on the robot; the
# files carry no extrinsics, so the fusion node takes the scene's LiDAR -> IR camera from here
FILES_LIDAR = """lidar:
  ros__parameters:
    source: files
    points_path: "{path}"
    bin_fields: "x,y,z,intensity,t"
    rate_hz: 10.0
lidar_fusion_node:
  ros__parameters:
    extrinsics_source: parameters
    extrinsics_matrix: {matrix}
"""


def prerender_scans(beams: int, columns: int, count: int, folder: Path) -> list[float]:
    """`count` consecutive scans of the built-in scene's LiDAR as x y z intensity t float32 .bin files
    in `folder`; returns the scene's LiDAR -> IR camera transform (4x4, row-major)."""
    import numpy as np

    from depth_ai_nodes.lidar.synthetic import SyntheticLidarSource

    folder.mkdir(parents=True, exist_ok=True)
    src = SyntheticLidarSource(beams=beams, columns=columns, real_time=False)
    for k in range(count):
        scan = src.read(0.0)
        cols = [np.asarray(scan.points[f], np.float32) for f in ("x", "y", "z", "intensity", "t")]
        np.stack(cols, axis=1).astype("<f4").tofile(folder / f"{k:04d}.bin")
    return [float(v) for v in np.asarray(src.camera_from_lidar, np.float64).reshape(-1)]
STREAMS = ["/depth_inference/depth", "/fused/points", "/lidar_depth"]


def _rounds_table(rounds: list[dict[str, str]], names: list[str], streams: list[str]) -> None:
    """Per stream, the clean / one host and loss / clean rate ratios of every round (each round
    runs the three set-ups in turn, so a slow spell of the machine hits one round's set-ups
    alike) and their medians: run-to-run noise shows as the spread."""
    import statistics

    one, clean, lossy = names
    print(f"\n{len(rounds)} rounds, rate ratios per round and their median")
    print("| stream | clean / one host | median | loss / clean | median |")
    print("|---|---|---|---|---|")
    for topic in streams:
        a, b = [], []
        for r in rounds:
            rate = {k: runner_rates(r[k]).get(topic, 0.0) for k in names}
            a.append(rate[clean] / rate[one] if rate[one] else float("nan"))
            b.append(rate[lossy] / rate[clean] if rate[clean] else float("nan"))
        print(f"| {topic} | {', '.join(f'{v:.2f}' for v in a)} | {statistics.median(a):.2f} | "
              f"{', '.join(f'{v:.2f}' for v in b)} | {statistics.median(b):.2f} |")


def _merged_params(base: str, extra: str) -> str:
    """The params YAML `base` with the node sections of `extra` merged in (extra wins)."""
    import yaml

    merged = yaml.safe_load(base) or {}
    for node, section in (yaml.safe_load(extra) or {}).items():
        merged.setdefault(node, {}).setdefault("ros__parameters", {}).update(
            (section or {}).get("ros__parameters", {}))
    return yaml.safe_dump(merged, sort_keys=False)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--loss", type=int, default=5, help="percent of frames dropped in each direction")
    p.add_argument("--lidar", default="32x1024", help="synthetic LiDAR beams x columns (e.g. 128x2048)")
    p.add_argument("--camera", default="424x240x15", help="camera width x height x fps (e.g. 640x480x30)")
    p.add_argument("--compressed", action="store_true",
                   help="both runners with --compressed (JPEG images, RVL depth, zstd LiDAR scans across the link)")
    p.add_argument("--streams", action="store_true",
                   help="the server runs a subscriber to the crossing streams (test/stream_probe.py) instead of "
                        "the inference and fusion nodes: what the link delivers, without their CPU")
    p.add_argument("--lidar-files", action="store_true",
                   help="the robot's LiDAR plays scans rendered beforehand (source files) instead of rendering them")
    p.add_argument("--params", default="",
                   help="extra ROS params YAML (node sections) appended to the runs' params file, e.g. "
                        "'lidar_fusion_node: {ros__parameters: {input_qos_depth: 10}}'")
    p.add_argument("--repeat", type=int, default=1,
                   help="rounds of the three set-ups (one host, clean link, loss), in turn; ratios per round + median")
    p.add_argument("--observe", choices=("runner", "diagnostics"), default="runner",
                   help="how the server's output rates are measured: its runner's monitor subscribing to every "
                        "output (default), or read from the nodes' /diagnostics with the monitor off "
                        "(test/diag_observer.py: the monitor's own CPU out of the server's core)")
    p.add_argument("--shared-cpus", action="store_true",
                   help="both hosts on every core (default: each its own half of the cores)")
    args = p.parse_args()
    why = unavailable()
    if why:
        print(why, file=sys.stderr)
        return 2
    beams, columns = (int(v) for v in args.lidar.split("x"))
    params = PARAMS.format(beams=beams, columns=columns, profile=args.camera.replace("x", ","))
    domain = 90 + os.getpid() % 50
    logs = Path(tempfile.mkdtemp(prefix="multi_host_"))
    if args.lidar_files:
        sys.path.insert(0, str(ROOT))
        scans = logs / "scans"
        matrix = prerender_scans(beams, columns, 20, scans)
        params = params.split("lidar:\n")[0] + FILES_LIDAR.format(path=scans, matrix=matrix)
    if args.params:
        params = _merged_params(params, args.params)
    cpus = None if args.shared_cpus else host_cpus()
    extra = ("--compressed",) if args.compressed else ()
    runs = {"one host": (0, True), "clean link": (0, False), f"{args.loss} % loss": (args.loss, False)}
    probe = ([sys.executable, str(ROOT / "test" / "stream_probe.py"), str(args.seconds), "--domain-id", str(domain),
              *extra]
             if args.streams else None)
    def folder(name: str, rep: int) -> Path:
        return logs / (name.replace(" ", "_") + (f"_{rep}" if args.repeat > 1 else ""))

    rounds = [{name: run_split(sys.executable, args.seconds, loss, domain, params, folder(name, rep),
                               cpus=cpus, one_host=one, extra_args=extra, server_command=probe,
                               observe_diagnostics=args.observe == "diagnostics")
               for name, (loss, one) in runs.items()} for rep in range(args.repeat)]
    out = rounds[-1]  # the detailed tables: the last round
    streams = sorted(runner_rates(out["one host"])) if args.streams else STREAMS
    one, clean, lossy = (runner_rates(out[k]) for k in runs)
    stalled = stalls(out[f"{args.loss} % loss"], streams)
    if args.observe == "diagnostics":  # no monitor, no status rows to find a stop in
        stalled = {t: "not watched" for t in streams}
    if args.streams:  # the probe prints no status rows: its longest gap between two messages instead
        stalled = {t: f"longest gap {g:.2f} s" for t, g in probe_gaps(out[f"{args.loss} % loss"]).items()}
    print(f"\nsplit pipeline, {args.seconds:g} s per run, LiDAR {args.lidar}"
          f"{' (pre-rendered files, stamped when read)' if args.lidar_files else ''}, camera {args.camera}"
          f"{', compressed' if args.compressed else ''}; CPUs robot / server: "
          f"{'shared' if cpus is None else ' / '.join(cpus)}; server-side mean rates (Hz, first to last message"
          f"{'; published, read from the nodes /diagnostics, no monitor' if args.observe == 'diagnostics' else ''})")
    print(f"| stream ({'received on' if args.observe == 'runner' else 'published by'} the server) | one host | "
          f"clean link | clean / one host | {args.loss} % frame "
          f"loss | loss / clean | stalls with loss |")
    print("|---|---|---|---|---|---|---|")
    nan = float("nan")
    for topic in streams:
        o, a, b = one.get(topic, nan), clean.get(topic, nan), lossy.get(topic, nan)
        print(f"| {topic} | {o:.2f} | {a:.2f} | {a / o if o else nan:.2f} | {b:.2f} | {b / a if a else nan:.2f} "
              f"| {stalled.get(topic, '-')} |")
    if args.streams:
        bw = [probe_bandwidth(out[k]) for k in runs]
        print("\nbandwidth received on the server, MB/s of message data")
        print(f"| stream | {' | '.join(runs)} |")
        print("|---|---|---|---|")
        for topic in streams:
            print(f"| {topic} | " + " | ".join(f"{x.get(topic, nan):.2f}" for x in bw) + " |")
    lat = [runner_latencies(out[k]) for k in runs]
    print("\nlatency, header stamp -> received on the server, median ms (the camera and LiDAR stamp their "
          "frames; the LiDAR stamp is the start of its 100 ms sweep)" if args.observe == "runner" else
          "\nlatency from the nodes' /diagnostics, median ms: fusion stamp -> published on the node's clock, "
          "inference received -> published")
    print(f"| stream | {' | '.join(runs)} |")
    print("|---|---|---|---|")
    for topic in streams:
        print(f"| {topic} | " + " | ".join(f"{x.get(topic, nan):.1f}" for x in lat) + " |")
    cpu = {k: {**runner_cpu(out[k]), **runner_cpu((folder(k, args.repeat - 1) / "robot.out").read_text())}
           for k in runs}
    print("\nCPU per node after warm-up, % of one core (the runners' summaries)")
    print(f"| node | {' | '.join(runs)} |")
    print("|---|---|---|---|")
    for node in ("camera_node", "lidar_node", "depth_inference_node", "lidar_fusion_node"):
        print(f"| {node} | " + " | ".join(f"{cpu[k].get(node, nan):.0f}" for k in runs) + " |")
    if args.repeat > 1:
        _rounds_table(rounds, list(runs), streams)
    print(f"logs: {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
