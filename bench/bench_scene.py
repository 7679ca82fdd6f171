#!/usr/bin/env python3
"""Built-in scene rendering speed: camera framesets and LiDAR scans, against their real-time budgets.

The camera node renders the scene in its own loop, so a 640x480 frameset (colour + IR + depth +
ground truth) must fit well inside 1/fps; lidar_node needs a scan well inside 1/rate. Each time
is printed with its ratio to that budget (< 1.0 keeps up) and, as the baseline measured in the
same run, against a straightforward vectorised numpy ray cast of the same world that produces
only the ground-truth depth (no colour, IR, noise or holes): "x numpy" > 1 means our whole
frameset costs less than numpy's bare geometry. First-call times (numba compile vs cached
load) are measured in fresh subprocesses.

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


def timed(fn, n: int, cpu: list | None = None) -> list[float]:
    """Wall times of n calls (after one warm-up); process CPU times appended to cpu."""
    fn(0)
    out = []
    for i in range(n):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn(i + 1)
        out.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.process_time() - c0)
    return out


def numpy_gt_depth(cam: SyntheticCamera, t: float) -> np.ndarray:
    """Baseline: the ground-truth depth of the same frame, vectorised numpy over all pixels
    and every primitive (slab test for boxes and the room, quadratics for spheres/cylinders),
    one float64 array per component (no (N, 3) matmuls or small-axis reductions, which are
    slow in numpy)."""
    from depth_ai_nodes.core.scene import BOX, ROOM, SPHERE
    world, rig = cam.world, cam.rig
    w_depth = world.base_pose_matrix(t) @ rig.depth_in_base.matrix()
    g = np.asarray(rig.depth_model.ray_grid(), dtype=np.float64)
    rx, ry = g[..., 0].ravel(), g[..., 1].ravel()
    best = np.full(rx.shape, np.inf)
    cam_from_world = np.linalg.inv(w_depth)
    inf = np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, p in enumerate(world.primitives):
            m = cam_from_world @ world.primitive_pose_matrix(i, t)
            r = m[:3, :3]
            d = [r[0, k] * rx + r[1, k] * ry + r[2, k] for k in range(3)]  # object-frame directions
            o = -r.T @ m[:3, 3]
            s = p.size
            if p.kind in (BOX, ROOM):
                tn, tf = np.full(rx.shape, -inf), np.full(rx.shape, inf)
                for k in range(3):
                    t1, t2 = (-s[k] - o[k]) / d[k], (s[k] - o[k]) / d[k]
                    tn = np.maximum(tn, np.minimum(t1, t2))
                    tf = np.minimum(tf, np.maximum(t1, t2))
                hit = tf if p.kind == ROOM else np.where((tn <= tf) & (tn > 1e-6), tn, inf)
            elif p.kind == SPHERE:
                a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
                b = d[0] * o[0] + d[1] * o[1] + d[2] * o[2]
                disc = b * b - a * (o @ o - s[0] ** 2)
                hit = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0))) / a, inf)
            else:  # cylinder side and caps
                a = d[0] ** 2 + d[1] ** 2
                b = d[0] * o[0] + d[1] * o[1]
                disc = b * b - a * (o[0] ** 2 + o[1] ** 2 - s[0] ** 2)
                side = (-b - np.sqrt(np.maximum(disc, 0))) / a
                zs = o[2] + side * d[2]
                hit = np.where((disc >= 0) & (np.abs(zs) <= s[1]) & (side > 0), side, inf)
                for sg in (-1.0, 1.0):
                    tc = (sg * s[1] - o[2]) / d[2]
                    ok = (tc > 0) & ((o[0] + tc * d[0]) ** 2 + (o[1] + tc * d[1]) ** 2 <= s[0] ** 2)
                    hit = np.minimum(hit, np.where(ok, tc, inf))
            best = np.minimum(best, np.where(hit > 1e-6, hit, inf))
    return best.reshape(rig.height, rig.width).astype(np.float32)


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
    budget = 1.0 / a.fps
    print(f"cpu cores: {os.cpu_count()}, load avg: {os.getloadavg()[0]:.2f}")
    cam = SyntheticCamera(world, CameraRig(a.width, a.height, a.fps))
    ref = cam.render(0.4)
    base = numpy_gt_depth(cam, 0.4)
    assert np.allclose(base, ref.gt_depth_m, rtol=1e-4), "numpy baseline disagrees with the renderer"
    numpy_t = statistics.median(timed(lambda i: numpy_gt_depth(cam, i / a.fps), max(3, a.frames // 6)))
    print(f"{'what':40s} {'median ms':>10s} {'p95 ms':>8s} {'cpu ms':>7s} {'x budget':>9s} {'x numpy':>8s}")
    print(f"{'baseline: numpy gt depth only':40s} {numpy_t * 1e3:10.2f} {'':>8s} {'':>7s} {numpy_t / budget:9.2f} "
          f"{1.0:8.2f}")
    for parallel in (False, True):
        cam = SyntheticCamera(world, CameraRig(a.width, a.height, a.fps), parallel=parallel)
        cpu: list[float] = []
        ts = timed(lambda i: cam.render(i / a.fps), a.frames, cpu)
        med, p95 = statistics.median(ts), float(np.percentile(ts, 95))
        name = f"frameset {a.width}x{a.height} ({'parallel' if parallel else 'single thread'})"
        print(f"{name:40s} {med * 1e3:10.2f} {p95 * 1e3:8.2f} {statistics.median(cpu) * 1e3:7.2f} "
              f"{med / budget:9.2f} {numpy_t / med:8.2f}")
    for beams, cols in ((32, 1024), (128, 2048)):
        lidar = SyntheticLidar(world, beams=beams, columns=cols, rate_hz=10.0)
        cpu = []
        ts = timed(lambda i: lidar.scan(i * 0.1), a.scans, cpu)
        med, p95 = statistics.median(ts), float(np.percentile(ts, 95))
        name = f"LiDAR scan {beams}x{cols} (10 Hz)"
        print(f"{name:40s} {med * 1e3:10.2f} {p95 * 1e3:8.2f} {statistics.median(cpu) * 1e3:7.2f} "
              f"{med / 0.1:9.2f} {'':>8s}")
    print(f"(budget: camera 1/{a.fps:g} s, LiDAR 0.1 s; frameset = colour + IR + depth + ground truth)")
    with tempfile.TemporaryDirectory() as d:
        cold = first_call(a.width, a.height, d)
        warm = first_call(a.width, a.height, d)
    print(f"first call, numba compile (empty cache): camera {cold[0]:.2f} s, LiDAR {cold[1]:.2f} s")
    print(f"first call, cached (cache=True):         camera {warm[0]:.2f} s, LiDAR {warm[1]:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
