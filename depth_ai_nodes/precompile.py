"""Compile the numba kernels the nodes run into numba's on-disk cache, at build or install time.

A node that finds no cached kernels compiles them on its first start: 15-30 s on a 2-core
CPU before the first frame (core/jit.py says so in a log line). Compiling here instead, once:

- `pip install .` runs this on the build tree (setup.py), so the caches ship inside the wheel
  (``__pycache__/*.nbi, *.nbc`` next to each module);
- a colcon build runs it on the installed tree (CMakeLists.txt, ``install(CODE ...)``);
- ``python -m depth_ai_nodes.precompile`` does it by hand (e.g. after changing numba).

The caches stay valid after pip copies the files: numba (>= 0.68) stamps them with a hash of
the module's source, not its file time. They are keyed by the CPU that compiled them, so a
wheel built on another machine falls back to compiling on first start, with the log line.

Each kernel is compiled for the argument types the nodes pass it (numba compiles one machine
code per signature): the same public calls with tiny inputs, of the dtypes and layouts the
node's message boundary produces.
"""
from __future__ import annotations

import sys
import time
from typing import Callable

import numpy as np

__all__ = ["precompile", "main"]


def _scene() -> None:
    from depth_ai_nodes.core.scene import warm_up

    warm_up()


def _registration() -> None:
    from depth_ai_nodes.core.registration import warm_up

    warm_up()


def _fusion() -> None:
    """Projector.fuse and deskew as lidar_fusion_node calls them: float32 columns of a cloud
    (contiguous for projection, strided views for deskew), IR mono8 / mono16, colour, reference depth."""
    from depth_ai_nodes.core.motion import deskew
    from depth_ai_nodes.core.projection import Intrinsics, Projector

    cloud = np.zeros((8, 4), np.float32)
    cloud[:, 2] = np.linspace(1.0, 4.0, 8)
    contiguous = tuple(np.ascontiguousarray(cloud[:, k]) for k in range(4))  # clouds with NaN points dropped
    strided = tuple(cloud[:, k] for k in range(4))  # views into the message, as they arrive
    no_intensity = (*strided[:3], np.full(8, np.nan, np.float32))  # a cloud without an intensity field
    intr = Intrinsics.from_k(np.array([[8.0, 0, 4.0], [0, 8.0, 3.0], [0, 0, 1.0]]), 8, 6)
    proj = Projector(intr)
    for x, y, z, inten in (contiguous, strided, no_intensity):
        for ir in (np.zeros((6, 8), np.uint8), np.zeros((6, 8), np.uint16), np.zeros((6, 8), np.float32)):
            _, p = proj.fuse(x, y, z, inten, np.eye(4), ir, rgb=np.zeros((6, 8, 3), np.uint8),
                             ref_depth=np.zeros((6, 8), np.float32))
            proj.sparse_depth(p)
        for columns in (5, 6, 7, 8):  # every layout of the fused rows
            proj.fuse(x, y, z, inten, np.eye(4), None, out=np.empty((8, columns), np.float32))
    deskew(cloud[:, 0], cloud[:, 1], cloud[:, 2], np.zeros(8), 0.0, np.zeros(3), np.zeros(3))


def _depth_cloud() -> None:
    """camera_node's ~/depth/color/points (depth_to_cloud with and without colour)."""
    from depth_ai_nodes.core.camera_model import CameraModel
    from depth_ai_nodes.core.pointcloud import depth_to_cloud

    model = CameraModel(8, 6, [[8.0, 0.0, 4.0], [0.0, 8.0, 3.0], [0.0, 0.0, 1.0]])
    depth = np.full((6, 8), 1000, np.uint16)
    depth_to_cloud(depth, model)
    depth_to_cloud(depth, model, color=np.zeros((6, 8, 3), np.uint8), color_model=model)


def _compressed() -> None:
    from depth_ai_nodes.core.compressed import rvl_decode, rvl_encode

    rvl_decode(rvl_encode(np.arange(48, dtype=np.uint16).reshape(6, 8)))


def _undistort() -> None:
    from depth_ai_nodes.core.camera_model import CameraModel

    # a calibrated (distorted) camera: its rays for registration, point clouds and the scene
    cam = CameraModel(8, 6, np.array([[5.0, 0, 4], [0, 5.0, 3], [0, 0, 1]]), np.array([0.1, -0.05, 0, 0, 0]))
    cam.ray_grid()


def _pcd_lzf() -> None:
    from depth_ai_nodes.lidar.files import _lzf_decompress

    # read-only input, as the reader passes it (np.frombuffer of the file's bytes): a
    # writable array would compile a second signature
    _lzf_decompress(np.frombuffer(bytes([3, 1, 2, 3, 4]), np.uint8), np.empty(4, np.uint8))


def _edge_snap() -> None:
    from depth_ai_nodes.core.edge_snap import snap_to_edges

    d = np.zeros((8, 8), np.float32)
    d[:, :3], d[:, 5:] = 1.0, 3.0
    snap_to_edges(np.full((8, 8), 2.0, np.float32), d, 3)


STEPS: dict[str, Callable[[], None]] = {
    "scene": _scene, "registration": _registration, "fusion": _fusion,
    "depth cloud": _depth_cloud, "compressed depth": _compressed, "PCD lzf": _pcd_lzf,
    "edge snap": _edge_snap, "undistortion": _undistort,
}


def precompile(log: Callable[[str], None] = print) -> dict[str, float]:
    """Run every step; returns seconds per step. A step that fails is reported and skipped
    (its kernels then compile on first use, as without this)."""
    times = {}
    for name, step in STEPS.items():
        t0 = time.perf_counter()
        try:
            step()
        except Exception as err:  # never fail an install over a cache
            log(f"depth_ai_nodes: could not precompile {name} kernels ({type(err).__name__}: {err}); "
                f"they compile on first use")
            continue
        times[name] = time.perf_counter() - t0
    return times


def main() -> int:
    t0 = time.perf_counter()
    times = precompile(lambda s: print(s, file=sys.stderr))
    print("depth_ai_nodes: numba kernels compiled into the cache: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()) + f" (total {time.perf_counter() - t0:.1f} s)")
    return 0 if len(times) == len(STEPS) else 1


if __name__ == "__main__":
    sys.exit(main())
