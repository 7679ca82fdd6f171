#!/usr/bin/env python3
"""Built-in scene rendering speed: camera framesets and LiDAR scans, against their real-time budgets.

The camera node renders the scene in its own loop, so a 640x480 frameset (colour + IR + depth +
ground truth) must fit well inside 1/fps; lidar_node needs a scan well inside 1/rate. Each time
is printed with its ratio to that budget (measured in this run; < 1.0 keeps up) and to the bare
cost of allocating and filling the same output bytes (the floor any renderer pays).
First-call times (numba compile vs cached load) are measured in fresh subprocesses.

    python bench/bench_scene.py [--frames 60] [--width 640 --height 480 --fps 30]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from depth_ai_nodes.core.scene import CameraRig, SyntheticCamera, SyntheticLidar, World


def timed(fn, n: int) -> list[float]:
    fn(0)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i + 1)
        out.append(time.perf_counter() - t0)
    return out


def bytes_floor(h: int, w: int) -> float:
    """Allocate and fill the four output images once (memory-bandwidth floor)."""
    def once(_):
        np.full((h, w, 3), 1, np.uint8), np.full((h, w), 1, np.uint8)
        np.full((h, w), 1, np.uint16), np.full((h, w), 1.0, np.float32)
    return statistics.median(timed(once, 30))


FIRST_CALL = """
import time; t0 = time.perf_counter()
from depth_ai_nodes.core.scene import CameraRig, SyntheticCamera, SyntheticLidar, World
w = World.default(0); c = SyntheticCamera(w, CameraRig({w}, {h})); c.render(0.0)
t1 = time.perf_counter(); SyntheticLidar(w).scan(0.0); t2 = time.perf_counter()
print(f"{{t1 - t0:.3f}} {{t2 - t1:.3f}}")
"""


def first_call(w: int, h: int, cache_dir: str) -> tuple[float, float]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", FIRST_CALL.format(w=w, h=h)], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--scans", type=int, default=20)
    a = ap.parse_args()

    world = World.default(0)
    floor = bytes_floor(a.height, a.width)
    budget = 1.0 / a.fps
    print(f"cpu cores: {os.cpu_count()}, load avg: {os.getloadavg()[0]:.2f}")
    print(f"{'what':44s} {'median ms':>10s} {'p95 ms':>8s} {'x budget':>9s} {'x bytes':>8s}")
    for parallel in (False, True):
        cam = SyntheticCamera(world, CameraRig(a.width, a.height, a.fps), parallel=parallel)
        ts = timed(lambda i: cam.render(i / a.fps), a.frames)
        med, p95 = statistics.median(ts), float(np.percentile(ts, 95))
        name = f"frameset {a.width}x{a.height} ({'parallel' if parallel else 'single thread'})"
        print(f"{name:44s} {med * 1e3:10.2f} {p95 * 1e3:8.2f} {med / budget:9.2f} {med / floor:8.1f}")
    for beams, cols in ((32, 1024), (128, 2048)):
        lidar = SyntheticLidar(world, beams=beams, columns=cols, rate_hz=10.0)
        ts = timed(lambda i: lidar.scan(i * 0.1), a.scans)
        med, p95 = statistics.median(ts), float(np.percentile(ts, 95))
        name = f"LiDAR scan {beams}x{cols} (10 Hz)"
        print(f"{name:44s} {med * 1e3:10.2f} {p95 * 1e3:8.2f} {med / 0.1:9.2f} {'':>8s}")
    print(f"(budget: camera 1/{a.fps:g} s, LiDAR 0.1 s; bytes: filling the 4 output images {floor * 1e3:.2f} ms)")
    with tempfile.TemporaryDirectory() as d:
        cold = first_call(a.width, a.height, d)
        warm = first_call(a.width, a.height, d)
    print(f"first call, numba compile (empty cache): camera {cold[0]:.2f} s, LiDAR {cold[1]:.2f} s")
    print(f"first call, cached (cache=True):         camera {warm[0]:.2f} s, LiDAR {warm[1]:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
