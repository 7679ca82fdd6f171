"""Depth -> colour (or IR) registration with librealsense's ``rs.align`` semantics, ROS-free.

A realsense-ros user switching to this driver must get the same ``aligned_depth_to_color``
image, so this reproduces pyrealsense2's rs.align rule for rule, in float32 (the structure of
librealsense's precomputed-map align code; each rule checked pixel for pixel against
pyrealsense2 2.59 in test/test_registration.py):

1. every depth pixel's two corners (u-0.5, v-0.5) and (u+0.5, v+0.5) are deprojected with
   the depth intrinsics (rays precomputed once; librealsense only undistorts an
   ``inverse_brown_conrady`` depth stream there),
2. transformed with the depth->colour extrinsics and projected with the colour intrinsics
   (only a ``modified_brown_conrady`` target is distorted there; ``brown_conrady`` and
   ``inverse_brown_conrady`` targets are projected as pinholes, so here too),
3. converted to integer pixels as ``int(p + 0.5)`` (truncation toward zero, so -0.9 .. 0.5 -> 0),
4. when the depth image has fewer pixels per degree than the target (or the two "special"
   resolutions librealsense lists), the depth value is splatted over the whole rectangle
   between the two corners; otherwise only the top-left corner's pixel is written,
5. overlapping writes keep the nearest non-zero depth; 0 stays "no depth" (REP-118).

Camera models that did not come from librealsense (``rs_model == ''``, e.g. from a ROS
CameraInfo) are treated with their full OpenCV distortion: the depth rays are properly
undistorted and the colour projection applies plumb_bob / rational_polynomial. With zero
distortion both paths are identical.

Per frame: a branch-free (SIMD-friendly) numba pass maps every pixel's corners to integer target
pixels with precomputed rays, then a scatter pass writes the nearest depth, as librealsense does;
the only allocation is the output image (corner buffers are reused).
"""
from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
from numba import njit

from .camera_model import CameraModel
from .transforms import RigidTransform

__all__ = ["DepthRegistration", "align_depth_to_color", "rs_fov", "splats"]

# target distortion modes of the kernel
_DIST_NONE, _DIST_RS_MODIFIED, _DIST_OPENCV = 0, 1, 2
_RS_MODIFIED = ("modified_brown_conrady",)  # the only target model rs.align distorts (measured, 2.59)


def rs_fov(model: CameraModel) -> tuple[float, float]:
    """librealsense rs2_fov (degrees, float32 arithmetic), used for the splat decision."""
    f32 = np.float32
    ppx, ppy, fx, fy = f32(model.cx), f32(model.cy), f32(model.fx), f32(model.fy)
    w, h, half = f32(model.width), f32(model.height), f32(0.5)
    deg = f32(57.2957795)
    fov_x = (f32(math.atan2(ppx + half, fx)) + f32(math.atan2(w - (ppx + half), fx))) * deg
    fov_y = (f32(math.atan2(ppy + half, fy)) + f32(math.atan2(h - (ppy + half), fy))) * deg
    return float(f32(fov_x)), float(f32(fov_y))


def _is_special_resolution(depth: CameraModel, to: CameraModel) -> bool:
    return ((depth.width, depth.height, to.width, to.height) in ((640, 240, 320, 180), (640, 480, 640, 360)))


def splats(depth: CameraModel, to: CameraModel) -> bool:
    """True when librealsense fills the whole corner rectangle (depth coarser than target)."""
    f32 = np.float32
    fd, ft = rs_fov(depth), rs_fov(to)
    ppa_d = (f32(depth.width) / f32(fd[0]), f32(depth.height) / f32(fd[1]))
    ppa_t = (f32(to.width) / f32(ft[0]), f32(to.height) / f32(ft[1]))
    return bool(ppa_d[0] < ppa_t[0] or ppa_d[1] < ppa_t[1] or _is_special_resolution(depth, to))


def _corner_rays(model: CameraModel, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalized rays (float32, flat) of the pixel corners at (u+offset, v+offset)."""
    f32 = np.float32
    u = np.arange(model.width, dtype=np.float32) + f32(offset)
    v = np.arange(model.height, dtype=np.float32) + f32(offset)
    if model.rs_model:
        x = (u - f32(model.cx)) / f32(model.fx)
        y = (v - f32(model.cy)) / f32(model.fy)
        xx, yy = np.meshgrid(x, y)
        if model.rs_model == "inverse_brown_conrady" and model.has_distortion:
            c = [f32(v_) for v_ in model.coeffs(5)]
            r2 = xx * xx + yy * yy
            f = f32(1) + c[0] * r2 + c[1] * r2 * r2 + c[4] * r2 * r2 * r2
            ux = xx * f + f32(2) * c[2] * xx * yy + c[3] * (r2 + f32(2) * xx * xx)
            uy = yy * f + f32(2) * c[3] * xx * yy + c[2] * (r2 + f32(2) * yy * yy)
            xx, yy = ux, uy
        return np.ascontiguousarray(xx, np.float32).ravel(), np.ascontiguousarray(yy, np.float32).ravel()
    uu, vv = np.meshgrid(u.astype(np.float64), v.astype(np.float64))
    xy = model.undistort_points(np.stack([uu, vv], axis=-1))
    return (np.ascontiguousarray(xy[..., 0], np.float32).ravel(),
            np.ascontiguousarray(xy[..., 1], np.float32).ravel())


_INT_MIN = -2147483648


@njit(cache=True, inline="always", error_model="numpy")
def _to_int(p: np.float32) -> np.int32:
    """librealsense's int conversion of (p + 0.5): truncation toward zero (measured against
    pyrealsense2's rs.align); NaN/overflow give INT_MIN, i.e. off the image. Branch-free so
    the corner loops vectorize."""
    ok = (p > np.float32(-2147483000.0)) & (p < np.float32(2147483000.0))
    q = p if ok else np.float32(0.0)
    return np.int32(q) if ok else np.int32(_INT_MIN)


@njit(cache=True, inline="always", error_model="numpy")
def _clamp(q: np.int32, lim: int) -> np.int16:
    """Keep corners in int16 (half the memory traffic): anything off the image stays off it
    (-1 or lim >= size), so clipping the rectangles gives the same pixels."""
    return np.int16(min(max(q, np.int32(-1)), np.int32(lim)))


@njit(cache=True, inline="always", error_model="numpy")
def _to_target(d: np.float32, rx: np.float32, ry: np.float32, R: np.ndarray, T: np.ndarray) -> tuple:
    """Deprojected corner -> normalized target coordinates, in librealsense's float32 op order."""
    px = d * rx
    py = d * ry
    X = R[0] * px + (R[3] * py + (R[6] * d + T[0]))
    Y = R[1] * px + (R[4] * py + (R[7] * d + T[1]))
    Z = R[2] * px + (R[5] * py + (R[8] * d + T[2]))
    return X / Z, Y / Z


@njit(cache=True, nogil=True, error_model="numpy")
def _corners_pinhole(depth: np.ndarray, scale: np.float32, rx: np.ndarray, ry: np.ndarray, R: np.ndarray,
                     T: np.ndarray, intr: np.ndarray, uo: np.ndarray, vo: np.ndarray, lim: int) -> None:
    fx, fy, cx, cy = intr[0], intr[1], intr[2], intr[3]
    half = np.float32(0.5)
    for i in range(depth.size):
        d = np.float32(depth[i]) * scale
        x, y = _to_target(d, rx[i], ry[i], R, T)
        uo[i] = _clamp(_to_int((x * fx + cx) + half), lim)
        vo[i] = _clamp(_to_int((y * fy + cy) + half), lim)


@njit(cache=True, nogil=True, error_model="numpy")
def _corners_rs_modified(depth: np.ndarray, scale: np.float32, rx: np.ndarray, ry: np.ndarray, R: np.ndarray,
                         T: np.ndarray, intr: np.ndarray, c: np.ndarray, uo: np.ndarray, vo: np.ndarray,
                    lim: int) -> None:
    """librealsense's modified Brown-Conrady projection (tangential terms on the radially scaled x, y)."""
    fx, fy, cx, cy = intr[0], intr[1], intr[2], intr[3]
    half, one, two = np.float32(0.5), np.float32(1.0), np.float32(2.0)
    for i in range(depth.size):
        d = np.float32(depth[i]) * scale
        x, y = _to_target(d, rx[i], ry[i], R, T)
        r2 = x * x + y * y
        r3 = c[1] * (r2 * r2) + c[4] * (r2 * (r2 * r2))
        f = one + (c[0] * r2 + r3)
        xf = x * f
        yf = y * f
        dx = xf + (two * (c[2] * (xf * yf)) + c[3] * (r2 + two * (xf * xf)))
        dy = yf + (two * (c[3] * (xf * yf)) + c[2] * (r2 + two * (yf * yf)))
        uo[i] = _clamp(_to_int((dx * fx + cx) + half), lim)
        vo[i] = _clamp(_to_int((dy * fy + cy) + half), lim)


@njit(cache=True, nogil=True, error_model="numpy")
def _corners_opencv(depth: np.ndarray, scale: np.float32, rx: np.ndarray, ry: np.ndarray, R: np.ndarray,
                    T: np.ndarray, intr: np.ndarray, c: np.ndarray, uo: np.ndarray, vo: np.ndarray,
                    lim: int) -> None:
    """Full OpenCV plumb_bob / rational_polynomial projection (models not from librealsense)."""
    half = np.float32(0.5)
    for i in range(depth.size):
        d = np.float32(depth[i]) * scale
        x32, y32 = _to_target(d, rx[i], ry[i], R, T)
        x, y = np.float64(x32), np.float64(y32)
        r2 = x * x + y * y
        radial = (1.0 + r2 * (c[0] + r2 * (c[1] + r2 * c[4]))) / (1.0 + r2 * (c[5] + r2 * (c[6] + r2 * c[7])))
        xd = x * radial + 2.0 * c[2] * x * y + c[3] * (r2 + 2.0 * x * x)
        yd = y * radial + c[2] * (r2 + 2.0 * y * y) + 2.0 * c[3] * x * y
        uo[i] = _clamp(_to_int(np.float32(xd * intr[0] + intr[2]) + half), lim)
        vo[i] = _clamp(_to_int(np.float32(yd * intr[1] + intr[3]) + half), lim)


@njit(cache=True, nogil=True, error_model="numpy")
def _splat(depth: np.ndarray, u0: np.ndarray, v0: np.ndarray, u1: np.ndarray, v1: np.ndarray,
           out: np.ndarray) -> None:
    """Write each non-zero depth over its corner rectangle (clipped), keeping the nearest."""
    oh, ow = out.shape
    one = np.uint16(1)
    for i in range(depth.size):
        raw = depth[i]
        if raw == 0:
            continue
        ya = max(v0[i], 0)
        yb = min(v1[i], oh - 1)
        xa = max(u0[i], 0)
        xb = min(u1[i], ow - 1)
        for oy in range(ya, yb + 1):
            row = out[oy]
            for ox in range(xa, xb + 1):
                cur = row[ox]
                row[ox] = raw if np.uint16(cur - one) >= raw else cur  # empty (0) or farther: take it


@njit(cache=True, nogil=True, error_model="numpy")
def _scatter(depth: np.ndarray, u0: np.ndarray, v0: np.ndarray, out: np.ndarray) -> None:
    """One target pixel per depth pixel (depth at least as fine as the target), keeping the nearest."""
    oh, ow = out.shape
    flat_out = out.reshape(-1)
    one = np.uint16(1)
    for i in range(depth.size):
        # branch-free: which of the depth pixels landing on one target pixel is nearer is
        # data-dependent (unpredictable branches cost 3-4x here); misses store pixel 0's own value
        raw = depth[i]
        u, v = np.uint16(u0[i]), np.uint16(v0[i])  # -1 -> 65535: one bounds test each
        ok = (raw != 0) & (u < ow) & (v < oh)
        j = np.int64(v) * ow + np.int64(u) if ok else np.int64(0)
        cur = flat_out[j]
        take = ok & (np.uint16(cur - one) >= raw)  # empty (0) wraps to 65535: always taken
        flat_out[j] = raw if take else cur


class DepthRegistration:
    """Registers 16-bit depth images into another camera's geometry (colour or IR).

    Build once per calibration (rays and parameters are precomputed), then call ``align``
    per frame. ``depth_scale`` converts raw depth to metres (0.001 for 16UC1 millimetres;
    the device's depth units for raw librealsense frames).
    """

    def __init__(self, depth_model: CameraModel, color_model: CameraModel,
                 depth_to_color: RigidTransform | None = None, depth_scale: float = 0.001) -> None:
        self.depth_model = depth_model
        self.color_model = color_model
        self.depth_to_color = depth_to_color if depth_to_color is not None else RigidTransform.identity()
        if not isinstance(self.depth_to_color, RigidTransform):
            self.depth_to_color = RigidTransform(np.asarray(getattr(self.depth_to_color, "matrix",
                                                                    lambda: self.depth_to_color)()))
        self.depth_scale = float(depth_scale)
        if not self.depth_scale > 0:
            raise ValueError(f"depth_scale must be positive; got {depth_scale}")
        self.splat = splats(depth_model, color_model)
        self._rx0, self._ry0 = _corner_rays(depth_model, -0.5)
        if self.splat:
            self._rx1, self._ry1 = _corner_rays(depth_model, 0.5)
        else:
            self._rx1, self._ry1 = self._rx0, self._ry0
        rot, trans = self.depth_to_color.to_rs_extrinsics()  # column-major, as librealsense indexes it
        self._R = np.asarray(rot, np.float32)
        self._T = np.asarray(trans, np.float32)
        cm = color_model
        self._intr = np.array([cm.fx, cm.fy, cm.cx, cm.cy], np.float32)
        if cm.rs_model:
            self._mode = _DIST_RS_MODIFIED if (cm.rs_model in _RS_MODIFIED and cm.has_distortion) else _DIST_NONE
        else:
            self._mode = _DIST_OPENCV if cm.has_distortion else _DIST_NONE
        if self._mode == _DIST_OPENCV:
            if cm.distortion_model == "equidistant":
                raise ValueError("registration into an equidistant (fisheye) camera is not supported")
            self._coeffs = cm.coeffs(8).astype(np.float64)
        else:
            self._coeffs = cm.coeffs(8).astype(np.float32)
        n = depth_model.width * depth_model.height
        # per-instance scratch for the integer corners, reused every frame (guarded by a lock)
        if max(cm.width, cm.height) > 32000:
            raise ValueError(f"target image {cm.width}x{cm.height} is too large (max 32000 pixels a side)")
        self._lim = max(cm.width, cm.height)
        self._lock = threading.Lock()
        self._u0, self._v0 = np.empty(n, np.int16), np.empty(n, np.int16)
        self._u1, self._v1 = (np.empty(n, np.int16), np.empty(n, np.int16)) if self.splat else (self._u0, self._v0)

    def align(self, depth: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """uint16 depth (depth geometry) -> uint16 depth in the target geometry, 0 = no depth.

        Values are copied unchanged (same units as the input), as rs.align does.
        """
        d = np.asarray(depth)
        dm, cm = self.depth_model, self.color_model
        if d.dtype != np.uint16 or d.shape != (dm.height, dm.width):
            raise ValueError(f"align needs uint16 depth of {dm.width}x{dm.height}; got {d.dtype} "
                             f"{d.shape[1] if d.ndim > 1 else '?'}x{d.shape[0]}")
        if out is None:
            out = np.zeros((cm.height, cm.width), np.uint16)
        else:
            if out.shape != (cm.height, cm.width) or out.dtype != np.uint16:
                raise ValueError(f"out must be uint16 {cm.width}x{cm.height}")
            out.fill(0)
        flat = np.ascontiguousarray(d).reshape(-1)
        with self._lock:  # the corner buffers are per instance; kernels release the GIL
            self._corners(flat, self._rx0, self._ry0, self._u0, self._v0)
            if self.splat:
                self._corners(flat, self._rx1, self._ry1, self._u1, self._v1)
                _splat(flat, self._u0, self._v0, self._u1, self._v1, out)
            else:
                _scatter(flat, self._u0, self._v0, out)
        return out

    def _corners(self, flat: np.ndarray, rx: np.ndarray, ry: np.ndarray, uo: np.ndarray, vo: np.ndarray) -> None:
        scale = np.float32(self.depth_scale)
        if self._mode == _DIST_NONE:
            _corners_pinhole(flat, scale, rx, ry, self._R, self._T, self._intr, uo, vo, self._lim)
        elif self._mode == _DIST_RS_MODIFIED:
            _corners_rs_modified(flat, scale, rx, ry, self._R, self._T, self._intr, self._coeffs, uo, vo, self._lim)
        else:
            _corners_opencv(flat, scale, rx, ry, self._R, self._T, self._intr, self._coeffs, uo, vo, self._lim)

    __call__ = align


_CACHE: dict[tuple, DepthRegistration] = {}


def _key(depth_model: CameraModel, color_model: CameraModel, T: Any, depth_scale: float) -> tuple:
    m = T.matrix() if hasattr(T, "matrix") else np.asarray(T)
    return (depth_model.width, depth_model.height, depth_model.K.tobytes(), depth_model.coeffs(8).tobytes(),
            depth_model.rs_model, depth_model.distortion_model,
            color_model.width, color_model.height, color_model.K.tobytes(), color_model.coeffs(8).tobytes(),
            color_model.rs_model, color_model.distortion_model,
            np.asarray(m, np.float64).tobytes(), float(depth_scale))


def align_depth_to_color(depth: np.ndarray, depth_model: CameraModel, color_model: CameraModel,
                         depth_to_color: RigidTransform | None, depth_scale: float = 0.001) -> np.ndarray:
    """One-call registration; the DepthRegistration of a calibration is built once and reused."""
    key = _key(depth_model, color_model, depth_to_color if depth_to_color is not None else np.eye(4), depth_scale)
    reg = _CACHE.get(key)
    if reg is None:
        if len(_CACHE) > 16:
            _CACHE.clear()
        reg = _CACHE[key] = DepthRegistration(depth_model, color_model, depth_to_color, depth_scale)
    return reg.align(depth)
