"""realsense-ros frame names and the static transform tree, ROS-free.

Frames follow realsense-ros (REP-103/105): `<camera_name>_link` is the base,
the depth sensor sits at its origin, and each stream has a `_frame` (x forward,
REP-103) and an `_optical_frame` (z forward, x right, y down) rotated from it.
Extrinsics map depth optical points into the other optical frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# link <- optical: optical z (forward) = link x, optical x (right) = -link y,
# optical y (down) = -link z.
OPTICAL_IN_LINK = np.array([[0.0, 0.0, 1.0, 0.0],
                            [-1.0, 0.0, 0.0, 0.0],
                            [0.0, -1.0, 0.0, 0.0],
                            [0.0, 0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class FrameNames:
    """Frame ids of one camera, realsense-ros style (`camera_name` is the prefix)."""

    camera_name: str = "camera"
    base_frame_id: str = "link"

    @property
    def base(self) -> str:
        return f"{self.camera_name}_{self.base_frame_id}"

    def frame(self, stream: str) -> str:
        return f"{self.camera_name}_{stream}_frame"

    def optical(self, stream: str) -> str:
        """stream: 'color', 'depth', 'infra1' (aligned depth uses the color optical frame)."""
        return f"{self.camera_name}_{stream}_optical_frame"


def static_transforms(names: FrameNames, depth_to: dict[str, np.ndarray]
                      ) -> list[tuple[str, str, np.ndarray]]:
    """(parent, child, 4x4 pose of child in parent) for the whole camera tree.

    depth_to maps stream -> 4x4 extrinsics (depth optical -> stream optical,
    p_stream = T @ p_depth); 'depth' itself is the identity."""
    out: list[tuple[str, str, np.ndarray]] = []
    for stream, depth_to_stream in {"depth": np.eye(4), **depth_to}.items():
        # pose of the stream's optical frame in the depth optical frame
        optical_in_depth_optical = np.linalg.inv(np.asarray(depth_to_stream, dtype=float))
        optical_in_link = OPTICAL_IN_LINK @ optical_in_depth_optical
        frame_in_link = optical_in_link @ np.linalg.inv(OPTICAL_IN_LINK)
        out.append((names.base, names.frame(stream), frame_in_link))
        out.append((names.frame(stream), names.optical(stream), OPTICAL_IN_LINK.copy()))
    return out



def matrix_of(transform: Any) -> np.ndarray:
    """4x4 matrix of a core RigidTransform (or of a 4x4 array)."""
    m = getattr(transform, "matrix", transform)
    return np.asarray(m() if callable(m) else m, dtype=np.float64)
