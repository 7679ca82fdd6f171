"""The LiDAR scan every source yields, and `open_source` choosing a source by name."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

# The point fields every source fills, in lidar_node's PointCloud2 order (t: seconds since
# the stamp; t before ring keeps every float 4-byte aligned).
POINT_FIELDS = (("x", np.float32), ("y", np.float32), ("z", np.float32),
                ("intensity", np.float32), ("t", np.float32), ("ring", np.uint16))


class SourceError(Exception):
    """A source that cannot start (missing file, missing package); says what to fix."""


@dataclass
class LidarScan:
    """One revolution. points: x, y, z, intensity (float32), ring (uint16), t (float32 s,
    per-point time offset from stamp_ns). near_ir: (rings, columns) uint16 image or None."""

    stamp_ns: int
    points: dict[str, np.ndarray]
    frame_id: str = "lidar_link"
    near_ir: np.ndarray | None = None
    index: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.points["x"].shape[0])


class LidarSource(Protocol):
    rate_hz: float
    frame_id: str

    def read(self, timeout: float) -> LidarScan | None: ...

    def close(self) -> None: ...


def open_source(kind: str, **kw: Any) -> LidarSource:
    """'synthetic' | 'kitti' | 'ouster' | 'files' with that source's keyword arguments."""
    if kind == "synthetic":
        from .synthetic import SyntheticLidarSource
        return SyntheticLidarSource(**kw)
    if kind == "kitti":
        from .kitti import KittiSource
        return KittiSource(**kw)
    if kind == "ouster":
        from .ouster import OusterSource
        return OusterSource(**kw)
    if kind == "files":
        from .files import PointFileSource
        return PointFileSource(**kw)
    raise SourceError(f"unknown LiDAR source {kind!r}; use synthetic, kitti, ouster or files")


class Pacer:
    """Releases scan k at start + k / rate (real time), or immediately when rate <= 0."""

    def __init__(self, rate_hz: float) -> None:
        import time

        self._time = time
        self.rate_hz = rate_hz
        self.k = 0
        self.t0 = time.monotonic()

    def wait(self, timeout: float) -> bool:
        """True when the next scan is due (sleeping up to timeout); False if not yet."""
        if self.rate_hz <= 0:
            return True
        due = self.t0 + self.k / self.rate_hz
        now = self._time.monotonic()
        if due - now > timeout:
            self._time.sleep(max(0.0, timeout))
            return False
        if due > now:
            self._time.sleep(due - now)
        elif now - due > 1.0 / self.rate_hz:  # fell behind: skip ahead, never burst
            self.k = int((now - self.t0) * self.rate_hz)
        return True


class Playlist:
    """The next item of a finite recording (KITTI files, Ouster scans), paced like the
    sensor: None at the end (after a short wait) unless it loops."""

    def __init__(self, count: int, rate_hz: float, loop: bool) -> None:
        self.count, self.loop = count, loop
        self.pacer = Pacer(rate_hz)
        self.i = 0

    def next(self, timeout: float) -> int | None:
        if self.i >= self.count:
            if not self.loop:
                self.pacer._time.sleep(min(timeout, 0.1))
                return None
            self.i = 0
        if not self.pacer.wait(timeout):
            return None
        self.pacer.k += 1
        self.i += 1
        return self.i - 1
