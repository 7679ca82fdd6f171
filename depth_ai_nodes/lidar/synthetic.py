"""The built-in scene's spinning LiDAR (core/scene SyntheticLidar), in real time.

Scene time convention: a scan stamped at wall time s (seconds since the epoch) is the
scan the scene fires from scene time s, so a camera rendering the same World at its
frame's stamp sees the same moment from another process (see docs/fusion.md).
"""
from __future__ import annotations

import time

import numpy as np

from depth_ai_nodes.core.calibration import as_matrix
from .base import LidarScan, Pacer, SourceError


class SyntheticLidarSource:
    def __init__(self, beams: int = 32, columns: int = 1024, rate_hz: float = 10.0, seed: int = 0,
                 max_range: float = 50.0, range_noise_m: float = 0.0, real_time: bool = True,
                 scene_time_origin: float = 0.0, camera_width: int = 640, camera_height: int = 480) -> None:
        from depth_ai_nodes.core.scene import LIDAR_FRAME, CameraRig, SyntheticLidar, World, lidar_to_camera

        if beams < 1 or columns < 16 or not 0 < rate_hz <= 50:
            raise SourceError(f"synthetic LiDAR: beams {beams} (>= 1), columns {columns} (>= 16) "
                              f"and rate_hz {rate_hz} (0-50] are out of range")
        self.world = World.default(seed=seed)
        self.lidar = SyntheticLidar(self.world, beams=beams, columns=columns, rate_hz=rate_hz,
                                    max_range=max_range, range_noise_m=range_noise_m, seed=seed)
        self.rig = CameraRig(width=camera_width, height=camera_height)
        self.rate_hz = float(rate_hz)
        self.frame_id = LIDAR_FRAME
        self.real_time = real_time
        self.origin = float(scene_time_origin)
        self.camera_from_lidar = as_matrix(lidar_to_camera(self.rig, self.lidar))
        self.base_from_lidar = as_matrix(self.lidar.mount)
        self._pacer = Pacer(rate_hz if real_time else 0.0)
        self._k = 0

    def scene_time(self, stamp_ns: int) -> float:
        return stamp_ns * 1e-9 - self.origin

    def read(self, timeout: float) -> LidarScan | None:
        if not self._pacer.wait(timeout):
            return None
        self._pacer.k += 1
        if self.real_time:
            # the scan that started one period ago is complete now (a real sensor publishes
            # a revolution after it ends)
            stamp_ns = time.time_ns() - int(1e9 / self.rate_hz)
        else:
            stamp_ns = int((self.origin + self._k / self.rate_hz) * 1e9)
        self._k += 1
        pts = self.lidar.scan(self.scene_time(stamp_ns))
        return LidarScan(stamp_ns, pts, self.frame_id, index=self._k - 1)

    def odometry(self, stamp_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(4x4 world <- lidar, linear, angular twist of lidar_link in lidar_link) at a stamp."""
        t = self.scene_time(stamp_ns)
        from depth_ai_nodes.core.motion import twist_in_frame

        lin, ang = self.world.base_twist(t)
        v, w = twist_in_frame(lin, ang, self.base_from_lidar)
        return self.world.base_pose_matrix(t) @ self.base_from_lidar, v, w

    def close(self) -> None:
        pass
