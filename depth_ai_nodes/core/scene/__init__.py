"""The built-in scene: one world, seen by a RealSense-like camera rig and a spinning LiDAR.

ROS-free (numpy + numba). Typical use::

    from depth_ai_nodes.core.scene import World, CameraRig, SyntheticCamera, SyntheticLidar, lidar_to_camera

    world = World.default(seed=0)                 # deterministic by seed
    cam = SyntheticCamera(world, CameraRig(640, 480, fps=30), seed=0)
    f = cam.render(t)                             # CameraFrame: color rgb8, ir mono8, depth_mm uint16,
                                                  # gt_depth_m float32 (NaN = no surface), world_from_depth
    lidar = SyntheticLidar(world, beams=32, columns=1024, rate_hz=10.0)
    pts = lidar.scan(t_start)                     # dict x, y, z, intensity (float32), ring (uint16), t (float32 s)
    T = lidar_to_camera(cam.rig, lidar)           # RigidTransform: depth/infra1 optical <- lidar_link

Calibration (CameraRig): depth_model / ir_model / color_model (CameraModel), depth_to_color and
depth_to_ir (RigidTransform, colour <- depth like librealsense extrinsics), camera_link_in_base,
depth_optical_in_camera_link, color_optical_in_camera_link, depth_scale (0.001), baseline_m (0.050).
Robot motion: world.base_pose(t) (RigidTransform world <- base_link), world.base_twist(t)
((linear, angular) in base_link, for nav_msgs/Odometry). The rendered IR at a point:
cam.ir_at(frame, points_in_ir_optical). warm_up() compiles the numba kernels once (cached on
disk) so that node start-up is fast. See docs/scene.md.
"""
from __future__ import annotations

from .camera import (COLOR_FRAME, DEPTH_FRAME, IR_FRAME, LINK_FRAME, CameraFrame, CameraRig, DepthSensorModel,
                     SyntheticCamera)
from .lidar import LIDAR_FRAME, SyntheticLidar, default_lidar_mount, lidar_to_camera
from .world import BOX, CYLINDER, ROOM, SPHERE, BaseTrajectory, Material, Primitive, World



def scene_time(stamp_ns: int, origin_s: float = 0.0) -> float:
    """The scene time (s) for a message stamp: processes that render the same world (camera_node,
    lidar_node, tests) agree on the robot's pose only when they all use this convention."""
    return stamp_ns * 1e-9 - origin_s


def warm_up() -> float:
    """Compile (or load from numba's cache) every scene kernel on tiny inputs; returns seconds.

    The first compile takes several seconds (more on a busy machine); numba caches it next to
    the package (__pycache__, or NUMBA_CACHE_DIR), so run this once after installing (set-up
    scripts, CI) and node start-up stays fast."""
    import time

    t0 = time.perf_counter()
    world = World.default(0)
    SyntheticCamera(world, CameraRig(32, 24), parallel=False).render(0.0, labels=True)
    SyntheticLidar(world, beams=2, columns=16).scan(0.0)
    world.surface_distance([[0.0, 0.0, 1.0]], 0.0)
    world.base_twist(0.0)  # lidar_node's odometry
    return time.perf_counter() - t0


__all__ = [
    "World", "Material", "Primitive", "BaseTrajectory", "ROOM", "BOX", "SPHERE", "CYLINDER",
    "CameraRig", "CameraFrame", "DepthSensorModel", "SyntheticCamera",
    "SyntheticLidar", "lidar_to_camera", "default_lidar_mount",
    "DEPTH_FRAME", "IR_FRAME", "COLOR_FRAME", "LINK_FRAME", "LIDAR_FRAME", "warm_up", "scene_time",
]
