#!/usr/bin/env python3
"""Registration (core/registration.py) vs librealsense's rs.align on the SAME frames, one run.

Both sides get identical depth frames from a pyrealsense2 software_device camera (the
reference rs.align path of test/rs_reference.py). Timed per frame, single process:
- rs.align: ``align.process(frameset)`` + reading the aligned depth as numpy (what a
  Python driver has to do); the frameset injection is NOT counted.
- ours: ``DepthRegistration.align(depth)`` (output allocation included).
Prints median (and min) times, the ratio ours / rs.align (goal <= 1.0) and pixel agreement.
D435-like calibration: depth fx 390.4 (640x480) / 640 (1280x720), colour fx 613.2 / 920.

    python bench/bench_registration.py [--frames 60] [--phases]

--phases also times the corner pass alone (every depth pixel's two corners deprojected,
transformed, projected and rounded, as rs.align rounds them, with no writes to the image): the
part no reordering of the writes can remove, four float32 divisions per pixel included.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))

from rs_reference import RsAligner, scene_depth  # noqa: E402

from depth_ai_nodes.core.camera_model import CameraModel  # noqa: E402
from depth_ai_nodes.core.registration import DepthRegistration  # noqa: E402
from depth_ai_nodes.core.transforms import RigidTransform, quaternion_to_matrix  # noqa: E402

CASES = [((640, 480), (640, 480)), ((1280, 720), (1280, 720)), ((640, 480), (1280, 720)),
         ((1280, 720), (640, 480))]


# D435 focal lengths (pixels) per stream and resolution
FX = {("depth", 640): 390.4, ("depth", 1280): 640.0, ("color", 640): 613.2, ("color", 1280): 920.0}


def d435_like(width: int, height: int, fx: float, rs_model: str) -> CameraModel:
    k = np.array([[fx, 0, width / 2 - 0.3], [0, fx * 1.0008, height / 2 + 0.6], [0, 0, 1]])
    return CameraModel(width, height, k, rs_model=rs_model)


def corner_pass_ms(reg: DepthRegistration, depth: np.ndarray, repeat: int = 50) -> float:
    """Median ms of the registration's corner pass alone (its own kernels, no fill, no copy)."""
    from numba import njit

    from depth_ai_nodes.core import registration as R

    @njit(nogil=True, error_model="numpy")
    def corners(depth, dw, scale, rx0, ry0, rx1, ry1, Rm, T, intr, c, lim, rows, rw, rh, rj, ow, oh):
        for v in range(depth.size // dw):
            d = depth[v * dw:(v + 1) * dw]
            rows[0][:] = ry0[v, 0]
            rows[1][:] = ry1[v, 0]
            R._rects_for(d, scale, rx0[0], rows[0], rx1[0], rows[1], Rm, T, intr, c, 0, True, lim, ow, oh,
                         ow + 2, rw, rh, rj)

    if reg._rx0.shape[0] != 1 or not reg.splat or reg._mode != 0:
        return float("nan")  # the bench's D435-like case only: separable rays, splat, pinhole target
    cm = reg.color_model
    args = (depth.reshape(-1), reg.depth_model.width, np.float32(reg.depth_scale), reg._rx0, reg._ry0, reg._rx1,
            reg._ry1, reg._R, reg._T, reg._intr, reg._coeffs, reg._lim, reg._rows, reg._rw, reg._rh, reg._rj,
            cm.width, cm.height)
    corners(*args)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        corners(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--phases", action="store_true", help="also time the corner pass alone")
    args = ap.parse_args()
    T = RigidTransform(quaternion_to_matrix([0.0012, -0.0021, 0.0004, 1.0]), [0.0147, 0.0001, 0.0003])
    print("median (min) per frame; ratio = ours / rs.align")
    print(f"{'depth -> color':>22} | {'rs.align ms':>12} | {'ours ms':>12} | {'ratio':>11} | identical px")
    for dsize, csize in CASES:
        dm = d435_like(*dsize, FX["depth", dsize[0]], "brown_conrady")
        cm = d435_like(*csize, FX["color", csize[0]], "inverse_brown_conrady")
        ref = RsAligner(dm, cm, T)
        ours = DepthRegistration(dm, cm, T)
        frames = [scene_depth(dm, seed=i) for i in range(4)]
        ours.align(frames[0])  # JIT warm-up (cached after the first run)
        framesets = []
        t_rs, t_ours, same = [], [], []
        for i in range(args.frames):
            d = frames[i % len(frames)]
            fs = ref.frameset(d)
            framesets.append(fs)
            t0 = time.perf_counter()
            a = ref.align_frameset(fs)
            t1 = time.perf_counter()
            b = ours.align(d)
            t2 = time.perf_counter()
            t_rs.append(t1 - t0)
            t_ours.append(t2 - t1)
            same.append(float((a == b).mean()))
            if len(framesets) > 8:
                framesets.pop(0)
        framesets.clear()
        ref.close()
        m_rs, m_ours = statistics.median(t_rs) * 1e3, statistics.median(t_ours) * 1e3
        b_rs, b_ours = min(t_rs) * 1e3, min(t_ours) * 1e3
        label = f"{dsize[0]}x{dsize[1]} -> {csize[0]}x{csize[1]}"
        print(f"{label:>22} | {m_rs:5.2f} ({b_rs:4.2f}) | {m_ours:5.2f} ({b_ours:4.2f}) | {m_ours / m_rs:4.2f} "
              f"({b_ours / b_rs:4.2f}) | {min(same) * 100:.3f} % (min over frames)")
        if args.phases:
            cp = corner_pass_ms(ours, frames[0])
            print(f"{'':>22}   corner pass alone {cp:.2f} ms = {cp / m_rs:.2f}x rs.align, "
                  f"{cp / m_ours:.0%} of ours")
    return 0


if __name__ == "__main__":
    sys.exit(main())
