"""LiDAR -> camera calibration from the places users have it: KITTI calib.txt, our YAML,
xyz + quaternion or 4x4 parameters. ROS-free.

Every function returns a 4x4 float64 matrix `camera <- lidar` (p_cam = T @ p_lidar) and,
for KITTI, the 3x3 intrinsics of the rectified camera, so the projection core needs one
convention only. `as_rigid(T)` wraps a matrix in the core's RigidTransform for callers
that want it.

Our YAML format (docs/fusion.md)::

    # depth_ai_nodes extrinsics v1: maps points in child_frame into parent_frame
    parent_frame: camera_infra1_optical_frame     # the camera (target) frame
    child_frame: lidar_link                        # the LiDAR (source) frame
    translation: [0.0, -0.1, -0.05]                # metres
    rotation_xyzw: [0.5, -0.5, 0.5, 0.5]           # unit quaternion x, y, z, w
    # or instead of translation + rotation_xyzw:
    # matrix: [[r00, r01, r02, tx], [r10, r11, r12, ty], [r20, r21, r22, tz], [0, 0, 0, 1]]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from depth_ai_nodes.core.transforms import matrix_to_quaternion, quaternion_to_matrix

class CalibrationError(ValueError):
    """A calibration file or parameter that cannot be used; the message says why."""


def quaternion_matrix(xyzw: Sequence[float]) -> np.ndarray:
    """3x3 rotation of a quaternion (x, y, z, w) (core/transforms.py), as a CalibrationError."""
    q = np.asarray(xyzw, dtype=np.float64).reshape(-1)
    if q.size != 4:
        raise CalibrationError(f"a quaternion needs 4 numbers x, y, z, w; got {q.size}")
    try:
        return quaternion_to_matrix(q)
    except ValueError as err:
        raise CalibrationError(str(err)) from err


def from_xyz_quat(xyz: Sequence[float], xyzw: Sequence[float]) -> np.ndarray:
    t = np.asarray(xyz, dtype=np.float64).reshape(-1)
    if t.size != 3 or not np.all(np.isfinite(t)):
        raise CalibrationError(f"a translation needs 3 finite numbers; got {list(t)}")
    m = np.eye(4)
    m[:3, :3] = quaternion_matrix(xyzw)
    m[:3, 3] = t
    return m


def from_matrix(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """A 4x4 (16 numbers row-major, or 12 = the top 3x4) rigid transform, checked."""
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.size == 12:
        a = np.concatenate([a, [0.0, 0.0, 0.0, 1.0]])
    if a.size != 16 or not np.all(np.isfinite(a)):
        raise CalibrationError(f"a transform matrix needs 16 (or 12) finite numbers, row-major; got {a.size}")
    m = a.reshape(4, 4)
    r = m[:3, :3]
    if not np.allclose(m[3], [0, 0, 0, 1]) or not np.allclose(r @ r.T, np.eye(3), atol=1e-4) \
            or np.linalg.det(r) < 0:
        raise CalibrationError("the 4x4 matrix is not a rigid transform (rotation must be orthonormal "
                               "with determinant +1, last row 0 0 0 1)")
    return m.copy()


def decompose_projection(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 3x4 projection P = K [R | t] (lidar2img, KITTI P2 @ R0_rect @ Tr) -> (K 3x3 with
    K[2,2] = 1 and a positive diagonal, 4x4 rigid [R | t]). RQ decomposition of the left
    3x3; CalibrationError when it is singular or its R is a reflection."""
    p = np.asarray(p, dtype=np.float64).reshape(3, 4)
    m = p[:, :3]
    if not np.all(np.isfinite(p)) or abs(np.linalg.det(m)) < 1e-12 * max(np.abs(m).max(), 1.0) ** 3:
        raise CalibrationError("its left 3x3 is singular (or not finite), so it is no projection K [R | t]")
    # RQ via QR of the row-reversed transpose
    flip = np.eye(3)[::-1]
    q, r = np.linalg.qr((flip @ m).T)
    k = flip @ r.T @ flip
    rot = flip @ q.T
    signs = np.diag(np.sign(np.diag(k)))
    k, rot = k @ signs, signs @ rot
    scale = k[2, 2]
    t = np.linalg.solve(k, p[:, 3])
    if np.linalg.det(rot) < 0:  # P was given up to a negative scale
        rot, t = -rot, -t
    k = k / scale
    if not (k[0, 0] > 0 and k[1, 1] > 0):
        raise CalibrationError("its decomposition has a non-positive focal length")
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rot, t
    return k, out


def interpret_matrix(values: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """12 or 16 numbers, row-major: a rigid camera <- LiDAR transform (K None), or a 3x4 /
    4x4 projection (lidar2img) decomposed into (K [R | t]): returns (4x4 rigid, K or None).
    CalibrationError says which it is neither and how many numbers it got."""
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.size not in (12, 16):
        raise CalibrationError(f"a transform or projection matrix needs 12 (3x4) or 16 (4x4) numbers, "
                               f"row-major; got {a.size}")
    try:
        return from_matrix(a), None
    except CalibrationError as rigid_err:
        m4 = np.vstack([a.reshape(-1, 4), [[0.0, 0.0, 0.0, 1.0]]])[:4] if a.size == 12 else a.reshape(4, 4)
        if a.size == 16 and not np.allclose(m4[3], [0, 0, 0, 1]):
            raise CalibrationError(f"the 16 numbers are neither a rigid transform ({rigid_err}) nor a projection "
                                   f"(a 4x4 lidar2img needs last row 0 0 0 1; got {m4[3].tolist()})") from None
        try:
            k, rigid = decompose_projection(m4[:3])
        except CalibrationError as proj_err:
            raise CalibrationError(f"the {a.size} numbers are neither a rigid transform ({rigid_err}) nor a "
                                   f"projection K [R | t] ({proj_err})") from None
        return rigid, k


def matrix_to_quat(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(xyz, quaternion xyzw) of a 4x4 rigid transform."""
    m = np.asarray(m, dtype=np.float64)
    return m[:3, 3].copy(), matrix_to_quaternion(m[:3, :3])


def as_rigid(m: np.ndarray) -> Any:
    """The core RigidTransform of a 4x4 matrix (core/transforms.py)."""
    from depth_ai_nodes.core.transforms import RigidTransform

    return RigidTransform.from_matrix(np.asarray(m, dtype=np.float64))


def as_matrix(tf: Any) -> np.ndarray:
    """4x4 float64 from a RigidTransform (anything with .matrix()) or an array."""
    m = tf.matrix() if hasattr(tf, "matrix") and callable(tf.matrix) else tf
    return np.asarray(m, dtype=np.float64).reshape(4, 4)


# ----------------------------------------------------------------------------- KITTI
@dataclass
class KittiCalib:
    """A KITTI object-benchmark calib.txt: P0-P3 (3x4), R0_rect (3x3), Tr_velo_to_cam (3x4)."""

    P: dict[int, np.ndarray]
    R0_rect: np.ndarray
    Tr_velo_to_cam: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def projection(self, camera: int = 2) -> np.ndarray:
        """3x4 P_cam @ R0_rect @ Tr_velo_to_cam: the KITTI reference projection of LiDAR points."""
        r0 = np.eye(4)
        r0[:3, :3] = self.R0_rect
        return self.P[camera] @ r0 @ self.Tr_velo_to_cam

    def lidar_to_camera(self, camera: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """(4x4 rectified camera <- velodyne, 3x3 K) with P = K [I | K^-1 p4]: P's 4th column
        (the stereo offset of camera `camera` from camera 0) becomes part of the extrinsics,
        so K @ (T @ X)[:3] equals P @ R0_rect @ Tr_velo_to_cam @ X."""
        p = self.P[camera]
        k = p[:, :3].copy()
        offset = np.eye(4)
        offset[:3, 3] = np.linalg.solve(k, p[:, 3])
        r0 = np.eye(4)
        r0[:3, :3] = self.R0_rect
        return offset @ r0 @ self.Tr_velo_to_cam, k


def parse_kitti_calib(path: str | Path) -> KittiCalib:
    """Read a KITTI calib.txt ("key: numbers" per line)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise CalibrationError(f"cannot read KITTI calibration {path}: {err}") from err
    values: dict[str, np.ndarray] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, _, rest = line.partition(":")
        try:
            values[key.strip()] = np.array([float(x) for x in rest.split()], dtype=np.float64)
        except ValueError as err:
            raise CalibrationError(f"{path}: line {key.strip()!r} is not numbers: {err}") from err

    def need(key: str, n: int) -> np.ndarray:
        if key not in values or values[key].size != n:
            raise CalibrationError(f"{path}: needs {key} with {n} numbers (KITTI calib.txt)")
        return values[key]

    p = {i: need(f"P{i}", 12).reshape(3, 4) for i in range(4) if f"P{i}" in values}
    if 2 not in p:
        need("P2", 12)
    r0 = need("R0_rect", 9).reshape(3, 3)
    tr = np.vstack([need("Tr_velo_to_cam", 12).reshape(3, 4), [0, 0, 0, 1]])
    extra = {k: v for k, v in values.items() if k not in {"R0_rect", "Tr_velo_to_cam"}
             and not (k.startswith("P") and k[1:].isdigit())}
    return KittiCalib(p, r0, tr, extra)


# ----------------------------------------------------------------------------- our YAML
@dataclass
class Extrinsic:
    """camera <- lidar with the frame names it was given for."""

    matrix: np.ndarray
    parent_frame: str = ""
    child_frame: str = ""


def extrinsic_from_dict(d: dict[str, Any], where: str = "extrinsics") -> Extrinsic:
    if not isinstance(d, dict):
        raise CalibrationError(f"{where}: expected a mapping with translation + rotation_xyzw or matrix")
    if "matrix" in d:
        m = from_matrix(d["matrix"])
    elif "translation" in d and "rotation_xyzw" in d:
        m = from_xyz_quat(d["translation"], d["rotation_xyzw"])
    else:
        raise CalibrationError(f"{where}: give `matrix` (4x4) or `translation` + `rotation_xyzw`")
    return Extrinsic(m, str(d.get("parent_frame", "")), str(d.get("child_frame", "")))


def load_extrinsics_yaml(path: str | Path) -> Extrinsic:
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise CalibrationError(f"cannot read extrinsics YAML {path}: {err}") from err
    return extrinsic_from_dict(data, str(path))


def save_extrinsics_yaml(path: str | Path, ext: Extrinsic) -> None:
    import yaml

    xyz, q = matrix_to_quat(ext.matrix)
    data = {"parent_frame": ext.parent_frame, "child_frame": ext.child_frame,
            "translation": [float(v) for v in xyz], "rotation_xyzw": [float(v) for v in q]}
    Path(path).write_text("# depth_ai_nodes extrinsics v1: maps points in child_frame into "
                          "parent_frame\n" + yaml.safe_dump(data, sort_keys=False))


def load_calibration_file(path: str | Path, kitti_camera: int = 2) -> tuple[Extrinsic, np.ndarray | None]:
    """Either format by content: (camera <- lidar, K or None). KITTI files also give K."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file {path} does not exist")
    head = path.read_text(errors="replace")[:4096]
    if "Tr_velo_to_cam" in head:
        calib = parse_kitti_calib(path)
        m, k = calib.lidar_to_camera(kitti_camera)
        return Extrinsic(m, f"kitti_camera_{kitti_camera}", "velodyne"), k
    return load_extrinsics_yaml(path), None
