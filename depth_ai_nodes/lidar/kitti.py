"""A folder of KITTI Velodyne scans: velodyne/*.bin (float32 x, y, z, reflectance) with
calib/*.txt; played at rate_hz (10 Hz like the HDL-64E), looping if asked.

KITTI .bin files carry no ring or time: ring is recovered from the scan order (the points
come laser by laser; a ring ends where the azimuth wraps), and t from the azimuth (the
sensor turns once per 1/rate_hz; KITTI's rings start and end straight ahead).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from depth_ai_nodes.core.calibration import parse_kitti_calib
from .base import LidarScan, Playlist, SourceError


def read_kitti_bin(path: str | Path) -> dict[str, np.ndarray]:
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size % 4:
        raise SourceError(f"{path}: size is not a multiple of 16 bytes (x, y, z, intensity float32)")
    a = raw.reshape(-1, 4)
    x, y, z = (np.ascontiguousarray(a[:, i]) for i in range(3))
    az = np.arctan2(y, x)
    wraps = np.zeros(a.shape[0], dtype=np.int64)
    # each ring's points run counter-clockwise from straight ahead (azimuth 0 -> pi, -pi -> 0),
    # so a ring ends where the azimuth crosses from below 0 back to 0 or above
    wraps[1:] = (az[:-1] < 0) & (az[1:] >= 0) & (az[:-1] > -0.5 * np.pi)
    ring = np.cumsum(wraps).astype(np.uint16)
    frac = np.mod(az, 2 * np.pi) / (2 * np.pi)  # fraction of the turn since straight ahead
    return {"x": x, "y": y, "z": z, "intensity": np.ascontiguousarray(a[:, 3]) * 255.0,
            "ring": ring, "t": frac.astype(np.float32)}


class KittiSource:
    def __init__(self, path: str, rate_hz: float = 10.0, loop: bool = True,
                 frame_id: str = "velodyne", real_time: bool = True, camera: int = 2) -> None:
        root = Path(path).expanduser()
        folder = root / "velodyne" if (root / "velodyne").is_dir() else root
        self.files = sorted(folder.glob("*.bin"))
        if not self.files:
            raise SourceError(f"kitti: no .bin scans in {folder} (set kitti_path to a KITTI folder "
                              "with velodyne/*.bin)")
        calib_dir = root / "calib"
        self.calibs = sorted(calib_dir.glob("*.txt")) if calib_dir.is_dir() else []
        self.calib = parse_kitti_calib(self.calibs[0]) if self.calibs else None
        # what lidar_node publishes as its extrinsics: camera `camera`'s rectified frame <- velodyne,
        # with the K of that camera (P = K [I | K^-1 p4]); None without a calib folder
        self.camera_from_lidar: np.ndarray | None = None
        self.camera_K: np.ndarray | None = None
        if self.calib is not None:
            if camera not in self.calib.P:
                raise SourceError(f"kitti: {self.calibs[0].name} has no P{camera} (kitti_camera)")
            self.camera_from_lidar, self.camera_K = self.calib.lidar_to_camera(camera)
        self.rate_hz, self.loop, self.frame_id = float(rate_hz), loop, frame_id
        self._playlist = Playlist(len(self.files), rate_hz if real_time else 0.0, loop)

    def read(self, timeout: float) -> LidarScan | None:
        i = self._playlist.next(timeout)
        if i is None:
            return None
        f = self.files[i]
        pts = read_kitti_bin(f)
        pts["t"] = pts["t"] / np.float32(self.rate_hz)
        return LidarScan(time.time_ns(), pts, self.frame_id, index=i, info={"file": f.name})

    def close(self) -> None:
        pass
