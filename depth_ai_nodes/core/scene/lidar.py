"""A spinning multi-beam LiDAR on the same robot, in the same world as the camera.

The sensor rotates once per 1/rate_hz; column j is fired at t_start + (j + 0.5) / (columns *
rate_hz) from the rig pose AT THAT TIME (with the objects where they are at that time), and
its points are expressed in the LiDAR frame at that time, exactly what a real sensor on a
moving robot delivers and what motion compensation must undo. Azimuth starts behind the
sensor and turns clockwise seen from above (Ouster-like), so the forward view (the camera's)
is swept mid-scan. ring 0 is the highest beam (Ouster convention).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..transforms import RigidTransform
from . import kernels as K
from .camera import CameraRig, _as_matrix, _matrix
from .world import World

LIDAR_FRAME = "lidar_link"


def default_lidar_mount() -> np.ndarray:
    """base_link <- lidar_link: level, 0.1 m ahead of the base origin, 0.9 m up (above the camera)."""
    return _matrix(np.eye(3), (0.1, 0.0, 0.9))


@dataclass
class SyntheticLidar:
    """Ray-cast LiDAR. vertical_fov_deg: (lowest, highest) beam elevation, beams evenly spaced,
    unless beam_elevations_deg lists each beam's elevation (highest first, e.g. a Velodyne's
    uneven spacing). range_noise_m: Gaussian range noise (0 by default, so points lie exactly
    on surfaces)."""

    world: World
    beams: int = 32
    columns: int = 1024
    rate_hz: float = 10.0
    vertical_fov_deg: tuple[float, float] = (-22.5, 22.5)
    min_range: float = 0.3
    max_range: float = 50.0
    range_noise_m: float = 0.0
    mount: np.ndarray | RigidTransform | None = None
    seed: int = 0
    beam_elevations_deg: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.beams < 1 or self.columns < 1 or self.rate_hz <= 0:
            raise ValueError(f"SyntheticLidar: beams ({self.beams}) and columns ({self.columns}) must be >= 1 "
                             f"and rate_hz ({self.rate_hz}) > 0")
        if not 0.0 <= self.min_range < self.max_range:
            raise ValueError(f"SyntheticLidar: need 0 <= min_range < max_range, got {self.min_range}, {self.max_range}")
        lo, hi = self.vertical_fov_deg
        if not -90.0 < lo <= hi < 90.0:
            raise ValueError(f"SyntheticLidar: vertical_fov_deg must be (lowest, highest) within (-90, 90), "
                             f"got {self.vertical_fov_deg}")
        self.mount = _as_matrix(default_lidar_mount() if self.mount is None else self.mount)
        lo, hi = self.vertical_fov_deg
        if self.beam_elevations_deg is not None:
            el = np.radians(np.asarray(self.beam_elevations_deg, dtype=np.float64))
            if el.ndim != 1 or len(el) != self.beams or np.any(np.abs(el) >= np.pi / 2):
                raise ValueError(f"beam_elevations_deg needs {self.beams} angles in (-90, 90) degrees")
        elif self.beams > 1:
            el = np.radians(np.linspace(hi, lo, self.beams))
        else:
            el = np.radians([0.5 * (lo + hi)])
        self.elevations = el                         # per ring, radians (ring 0 highest)
        self._cos_el = np.cos(el)
        self._sin_el = np.sin(el)
        frac = (np.arange(self.columns) + 0.5) / self.columns
        self.azimuths = np.pi - 2.0 * np.pi * frac  # per column, radians (CCW from +x)
        self.column_times = frac / self.rate_hz      # seconds since scan start
        self._rng = np.empty((self.beams, self.columns))
        self._inten = np.empty((self.beams, self.columns))

    @property
    def scan_period(self) -> float:
        return 1.0 / self.rate_hz

    @property
    def lidar_in_base(self) -> RigidTransform:
        """base_link <- lidar_link."""
        return RigidTransform.from_matrix(self.mount)

    def pose_matrix(self, t: float) -> np.ndarray:
        """4x4 world <- lidar_link at time t."""
        return self.world.base_pose_matrix(t) @ self.mount

    def scan(self, t_start: float, organized: bool = False, scan_index: int | None = None) -> dict[str, np.ndarray]:
        """One revolution starting at t_start. Returns float32 x, y, z (lidar frame at each
        point's own time), float32 intensity (0-255), uint16 ring, float32 t (seconds since
        t_start); no-return points dropped (organized=False, 1-D arrays, column-major order:
        all rings of column 0, then column 1, ...) or NaN (organized=True, (beams, columns))."""
        si = int(round(t_start * self.rate_hz)) if scan_index is None else int(scan_index)
        key = np.uint64((self.seed * 0x9E3779B1 + si * 0x85EBCA77 + 0x1234567) & 0xFFFFFFFFFFFFFFFF)
        w = self.world
        K.cast_lidar(self._cos_el, self._sin_el, self.azimuths, self.column_times, float(t_start),
                     w.base_params, np.ascontiguousarray(self.mount[:3, :3]), np.ascontiguousarray(self.mount[:3, 3]),
                     w.prim_params, w.prim_materials, w.material_table, self.min_range, self.max_range,
                     self.range_noise_m, key, self._rng, self._inten)
        r = self._rng
        ce = self._cos_el[:, None]
        x = (r * ce * np.cos(self.azimuths)[None, :]).astype(np.float32)
        y = (r * ce * np.sin(self.azimuths)[None, :]).astype(np.float32)
        z = (r * self._sin_el[:, None]).astype(np.float32)
        inten = self._inten.astype(np.float32)
        ring = np.broadcast_to(np.arange(self.beams, dtype=np.uint16)[:, None], r.shape)
        tt = np.broadcast_to(self.column_times.astype(np.float32)[None, :], r.shape)
        if organized:
            return {"x": x, "y": y, "z": z, "intensity": inten, "ring": ring.copy(), "t": tt.copy()}
        ok = ~np.isnan(r.T)  # column-major: points in firing order
        return {"x": x.T[ok], "y": y.T[ok], "z": z.T[ok], "intensity": inten.T[ok],
                "ring": ring.T[ok], "t": tt.T[ok]}


def lidar_to_camera(rig: CameraRig, lidar: SyntheticLidar) -> RigidTransform:
    """camera_depth_optical_frame (= infra1 optical) <- lidar_link: maps points in the LiDAR
    frame into the depth/IR optical frame (both rigidly mounted on base_link)."""
    return RigidTransform.from_matrix(np.linalg.inv(rig._base_from_depth) @ lidar.mount)
