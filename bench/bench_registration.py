#!/usr/bin/env python3
"""Registration (core/registration.py) vs librealsense's rs.align on the SAME frames, one run.

Both sides get identical depth frames from a pyrealsense2 software_device camera (the
reference rs.align path of test/rs_reference.py). Timed per frame, single process:
- rs.align: ``align.process(frameset)`` + reading the aligned depth as numpy (what a
  Python driver has to do); the frameset injection is NOT counted.
- ours: ``DepthRegistration.align(depth)`` (output allocation included).
Prints median (and min) times, the ratio ours / rs.align (goal <= 1.0) and pixel agreement.
D435-like calibration: depth fx 390.4 (640x480) / 640 (1280x720), colour fx 613.2 / 920.

    python bench/bench_registration.py [--frames 60]
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
