"""Rigid 3D transforms (rotation + translation), ROS-free.

One type for every calibration in the project so that librealsense extrinsics, ROS
TransformStamped/Extrinsics messages and 4x4 matrices all meet in one place.

Convention: ``T_b_a = RigidTransform(R, t)`` maps points expressed in frame ``a`` into
frame ``b``: ``p_b = R @ p_a + t``. librealsense's ``rs2_extrinsics from->to`` has the same
meaning but stores ``rotation`` COLUMN-major (``from_rs_extrinsics``/``to_rs_extrinsics``).
Quaternions are ``(x, y, z, w)`` as in geometry_msgs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["RigidTransform", "FrameTree", "quaternion_to_matrix", "matrix_to_quaternion"]


def quaternion_to_matrix(q_xyzw: Sequence[float]) -> np.ndarray:
    """3x3 rotation of a quaternion (x, y, z, w); normalised; a zero quaternion is an error."""
    q = np.asarray(q_xyzw, dtype=np.float64).reshape(4)
    n = float(np.linalg.norm(q))
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError(f"quaternion must be finite and non-zero (x, y, z, w); got {q.tolist()}")
    x, y, z, w = q / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) with w >= 0 of a rotation matrix (Shepperd's method)."""
    m = np.asarray(R, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = np.asarray(q, dtype=np.float64)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


@dataclass(init=False, eq=False)
class RigidTransform:
    """p_to = R @ p_from + t. Construct as ``RigidTransform(R, t)`` or ``RigidTransform(M4x4)``."""

    R: np.ndarray = field(repr=True)
    t: np.ndarray = field(repr=True)

    def __init__(self, R: np.ndarray | "RigidTransform" | None = None, t: Sequence[float] | None = None):
        if isinstance(R, RigidTransform):
            R, t = R.R, R.t
        if R is None:
            R = np.eye(3)
        R = np.asarray(R, dtype=np.float64)
        if R.shape == (4, 4) and t is None:
            if not np.allclose(R[3], [0, 0, 0, 1]):
                raise ValueError(f"a rigid 4x4 transform has last row [0, 0, 0, 1]; got {R[3].tolist()}")
            R, t = R[:3, :3], R[:3, 3]
        if R.shape != (3, 3):
            raise ValueError(f"rotation must be 3x3 (or a 4x4 matrix alone); got shape {R.shape}")
        t = np.zeros(3) if t is None else np.asarray(t, dtype=np.float64).reshape(-1)
        if t.shape != (3,):
            raise ValueError(f"translation must have 3 elements; got {t.shape}")
        if not (np.all(np.isfinite(R)) and np.all(np.isfinite(t))):
            raise ValueError("transform contains non-finite values")
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0:
            raise ValueError("rotation is not orthonormal with det +1")
        self.R = R.copy()
        self.t = t.copy()

    # --- construction --------------------------------------------------------------
    @classmethod
    def identity(cls) -> "RigidTransform":
        return cls(np.eye(3), np.zeros(3))

    @classmethod
    def from_matrix(cls, m: np.ndarray) -> "RigidTransform":
        m = np.asarray(m, dtype=np.float64)
        if m.shape != (4, 4):
            raise ValueError(f"expected a 4x4 matrix; got shape {m.shape}")
        return cls(m)

    @classmethod
    def from_xyz_quat(cls, xyz: Sequence[float], q_xyzw: Sequence[float]) -> "RigidTransform":
        return cls(quaternion_to_matrix(q_xyzw), np.asarray(xyz, dtype=np.float64))

    @classmethod
    def from_rs_extrinsics(cls, rotation: Sequence[float] | object, translation: Sequence[float] | None = None
                           ) -> "RigidTransform":
        """From librealsense extrinsics: 9 rotation values COLUMN-major + 3 translation (m).

        Also accepts an ``rs.extrinsics`` object as the single argument.
        """
        if translation is None and hasattr(rotation, "rotation"):
            rotation, translation = rotation.rotation, rotation.translation  # type: ignore[union-attr]
        r = np.asarray(rotation, dtype=np.float64).reshape(3, 3).T
        return cls(r, np.asarray(translation, dtype=np.float64))

    # --- export ----------------------------------------------------------------------
    def matrix(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = self.R
        m[:3, 3] = self.t
        return m

    def to_xyz_quat(self) -> tuple[np.ndarray, np.ndarray]:
        return self.t.copy(), matrix_to_quaternion(self.R)

    def to_rs_extrinsics(self) -> tuple[list[float], list[float]]:
        """(rotation 9 column-major, translation 3) as rs.extrinsics stores them."""
        return [float(v) for v in self.R.T.ravel()], [float(v) for v in self.t]

    @property
    def rotation(self) -> np.ndarray:
        return self.R

    @property
    def translation(self) -> np.ndarray:
        return self.t

    @property
    def quaternion_xyzw(self) -> np.ndarray:
        return matrix_to_quaternion(self.R)

    # --- algebra ---------------------------------------------------------------------
    def inverse(self) -> "RigidTransform":
        return RigidTransform(self.R.T, -self.R.T @ self.t)

    def compose(self, other: "RigidTransform") -> "RigidTransform":
        """self @ other: apply ``other`` first (T_c_a = T_c_b @ T_b_a)."""
        return RigidTransform(self.R @ other.R, self.R @ other.t + self.t)

    def __matmul__(self, other: "RigidTransform") -> "RigidTransform":
        if not isinstance(other, RigidTransform):
            return NotImplemented
        return self.compose(other)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform (N,3) (or (...,3)) points; keeps float32 input as float32."""
        p = np.asarray(points)
        if p.shape[-1] != 3:
            raise ValueError(f"points must have shape (..., 3); got {p.shape}")
        dtype = p.dtype if p.dtype in (np.float32, np.float64) else np.float64
        out = p @ self.R.T.astype(dtype) + self.t.astype(dtype)
        return out.astype(dtype, copy=False)

    def almost_equal(self, other: "RigidTransform", atol: float = 1e-9) -> bool:
        return bool(np.allclose(self.R, other.R, atol=atol) and np.allclose(self.t, other.t, atol=atol))

    def __repr__(self) -> str:
        q = self.quaternion_xyzw
        return (f"RigidTransform(t=[{self.t[0]:.6g}, {self.t[1]:.6g}, {self.t[2]:.6g}], "
                f"q_xyzw=[{q[0]:.6g}, {q[1]:.6g}, {q[2]:.6g}, {q[3]:.6g}])")


class FrameTree:
    """Named frames joined by rigid transforms (a TF tree without tf2): look up the
    transform between any two connected frames by chaining the edges between them.

    Edges are stored as tf2 stores them, ``parent -> child`` with the child's pose in the
    parent (``p_parent = T p_child``); setting an edge again for the same child replaces
    it, as a newer /tf_static message does."""

    def __init__(self) -> None:
        self._parent: dict[str, tuple[str, RigidTransform]] = {}

    def set(self, parent: str, child: str, T_parent_child: RigidTransform) -> None:
        if not parent or not child or parent == child:
            raise ValueError(f"a transform needs two different frame ids; got {parent!r} -> {child!r}")
        self._parent[child] = (parent, T_parent_child)

    @property
    def frames(self) -> set[str]:
        return set(self._parent) | {p for p, _ in self._parent.values()}

    def _chain_to_root(self, frame: str) -> list[tuple[str, RigidTransform]]:
        """[(frame, I), (parent, T_parent_frame), (grandparent, T_grandparent_frame), ...]."""
        chain, T, seen = [(frame, RigidTransform.identity())], RigidTransform.identity(), {frame}
        while frame in self._parent:
            frame, T_edge = self._parent[frame][0], self._parent[frame][1]
            if frame in seen:
                raise ValueError(f"the transforms form a loop through {frame!r}")
            seen.add(frame)
            T = T_edge @ T
            chain.append((frame, T))
        return chain

    def lookup(self, target: str, source: str) -> RigidTransform:
        """T_target_source (p_target = T p_source), as tf2's lookup_transform(target, source).

        Raises LookupError naming the frames when they are not connected."""
        if target == source:
            return RigidTransform.identity()
        up_source = self._chain_to_root(source)
        up_target = {f: T for f, T in self._chain_to_root(target)}
        for frame, T_frame_source in up_source:        # the lowest common ancestor
            if frame in up_target:
                return up_target[frame].inverse() @ T_frame_source
        known = ", ".join(sorted(self.frames)) or "none"
        raise LookupError(f"no transform between {target!r} and {source!r} (frames known: {known})")
