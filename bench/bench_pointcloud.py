#!/usr/bin/env python3
"""Depth -> PointCloud2 (ros/conversions.depth_to_pointcloud2) vs librealsense's rs.pointcloud, one run.

Same 640x480 frames from a pyrealsense2 software_device. rs.pointcloud is timed as
``calculate(depth)`` (+ ``map_to(color)`` and reading texture coordinates for the coloured case)
plus reading the vertices as numpy: it gives ALL pixels (zeros for no depth) and no message.
Ours is timed up to a finished sensor_msgs/PointCloud2 with only the valid points (xyz, or xyz +
packed rgb looked up in the colour image), i.e. more work. Prints medians and ratios.

    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=268435456 python bench/bench_pointcloud.py

(the malloc settings are the ones the project's nodes run with: depth_ai_nodes/ros/dds.py)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyrealsense2 as rs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))

from rs_reference import RsAligner, scene_depth  # noqa: E402

from depth_ai_nodes.core.camera_model import CameraModel  # noqa: E402
from depth_ai_nodes.core.transforms import RigidTransform, quaternion_to_matrix  # noqa: E402
from depth_ai_nodes.ros.conversions import depth_to_pointcloud2  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    dm = CameraModel(640, 480, np.array([[390.4, 0, 321.7], [0, 390.6, 238.2], [0, 0, 1]]), rs_model="brown_conrady")
    cm = CameraModel(640, 480, np.array([[613.2, 0, 319.9], [0, 613.4, 239.2], [0, 0, 1]]), rs_model="brown_conrady")
    T = RigidTransform(quaternion_to_matrix([0.0012, -0.0021, 0.0004, 1.0]), [0.0147, 0.0001, 0.0003])
    ref = RsAligner(dm, cm, T)
    ref.color[:] = np.random.default_rng(0).integers(0, 255, ref.color.shape, dtype=np.uint8)
    depth = scene_depth(dm, 0)
    fs = ref.frameset(depth)
    pc = rs.pointcloud()
    color = ref.color

    def rs_xyz():
        return np.asanyarray(pc.calculate(fs.get_depth_frame()).get_vertices()).view(np.float32).reshape(-1, 3)

    def rs_xyzrgb():
        pc.map_to(fs.get_color_frame())
        p = pc.calculate(fs.get_depth_frame())
        return (np.asanyarray(p.get_vertices()).view(np.float32).reshape(-1, 3),
                np.asanyarray(p.get_texture_coordinates()).view(np.float32).reshape(-1, 2))

    cases = {
        "xyz": (rs_xyz, lambda: depth_to_pointcloud2(depth, dm, frame_id="camera_depth_optical_frame")),
        "xyz + rgb": (rs_xyzrgb, lambda: depth_to_pointcloud2(depth, dm, color=color, color_model=cm,
                                                             depth_to_color=T, frame_id="camera_depth_optical_frame")),
    }
    print(f"{'640x480':>10} | {'rs.pointcloud ms':>16} | {'ours -> PointCloud2 ms':>22} | ratio")
    for name, (theirs, ours) in cases.items():
        theirs(), ours()  # warm-up / JIT
        t_rs, t_ours = [], []
        for _ in range(args.frames):
            t0 = time.perf_counter()
            theirs()
            t1 = time.perf_counter()
            ours()
            t2 = time.perf_counter()
            t_rs.append(t1 - t0)
            t_ours.append(t2 - t1)
        a, b = statistics.median(t_rs) * 1e3, statistics.median(t_ours) * 1e3
        print(f"{name:>10} | {a:16.2f} | {b:22.2f} | {b / a:.2f}")
    ref.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
