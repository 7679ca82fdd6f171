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

Per frame, one depth row at a time: a branch-free (SIMD) numba pass maps every pixel's corners
to a clipped target rectangle with precomputed rays, then a fill pass writes the nearest depth
over each rectangle, as librealsense does; the only allocation is the output image (row and
image scratch buffers are reused).
"""
from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
from numba import njit

from .camera_model import CameraModel
from .transforms import RigidTransform

__all__ = ["DepthRegistration", "align_depth_to_color", "rs_fov", "splats", "warm_up"]

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
    """Normalized rays (float32) of the pixel corners at (u+offset, v+offset): x of shape (1, W) and
    y of shape (H, 1) when they are separable (librealsense pinhole: x depends on u only, y on v
    only), else both (H, W). Separable rays keep ~5 MB of per-frame reads (640x480) out of the
    caches."""
    f32 = np.float32
    u = np.arange(model.width, dtype=np.float32) + f32(offset)
    v = np.arange(model.height, dtype=np.float32) + f32(offset)
    if model.rs_model:
        x = (u - f32(model.cx)) / f32(model.fx)
        y = (v - f32(model.cy)) / f32(model.fy)
        if not (model.rs_model == "inverse_brown_conrady" and model.has_distortion):
            return np.ascontiguousarray(x[None, :]), np.ascontiguousarray(y[:, None])
        xx, yy = np.meshgrid(x, y)
        c = [f32(v_) for v_ in model.coeffs(5)]
        r2 = xx * xx + yy * yy
        f = f32(1) + c[0] * r2 + c[1] * r2 * r2 + c[4] * r2 * r2 * r2
        ux = xx * f + f32(2) * c[2] * xx * yy + c[3] * (r2 + f32(2) * xx * xx)
        uy = yy * f + f32(2) * c[3] * xx * yy + c[2] * (r2 + f32(2) * yy * yy)
        return np.ascontiguousarray(ux, np.float32), np.ascontiguousarray(uy, np.float32)
    uu, vv = np.meshgrid(u.astype(np.float64), v.astype(np.float64))
    xy = model.undistort_points(np.stack([uu, vv], axis=-1))
    return np.ascontiguousarray(xy[..., 0], np.float32), np.ascontiguousarray(xy[..., 1], np.float32)


_INT_MIN = -2147483648
_EMPTY = np.uint16(0xFFFF)  # "no depth" in the scratch buffer, which holds depth - 1 (wrapping)
_PAD = 2                    # scratch columns/rows past the target image: room for the 3x3 blocks


@njit(cache=True, inline="always", error_model="numpy")
def _to_int(p: np.float32) -> np.int32:
    """librealsense's int conversion of (p + 0.5): truncation toward zero (measured against
    pyrealsense2's rs.align); NaN/overflow give INT_MIN, i.e. off the image. Branch-free so
    the corner loops vectorize."""
    ok = (p > np.float32(-2147483000.0)) & (p < np.float32(2147483000.0))
    q = p if ok else np.float32(0.0)
    return np.int32(q) if ok else np.int32(_INT_MIN)


@njit(cache=True, inline="always", error_model="numpy")
def _to_target(d: np.float32, rx: np.float32, ry: np.float32, R: np.ndarray, T: np.ndarray) -> tuple:
    """Deprojected corner -> normalized target coordinates, in librealsense's float32 op order."""
    px = d * rx
    py = d * ry
    X = R[0] * px + (R[3] * py + (R[6] * d + T[0]))
    Y = R[1] * px + (R[4] * py + (R[7] * d + T[1]))
    Z = R[2] * px + (R[5] * py + (R[8] * d + T[2]))
    return X / Z, Y / Z


@njit(cache=True, inline="always", error_model="numpy")
def _corner(d: np.float32, rx: np.float32, ry: np.float32, R: np.ndarray, T: np.ndarray, intr: np.ndarray,
            c: np.ndarray, mode: int, lim: int) -> tuple:
    """One corner -> integer target pixel, clamped to [-1, lim] (off the image stays off it).

    `mode` must be a constant at the call site: the branches then fold away and the loop
    vectorizes (a run-time mode keeps it scalar, 3x slower).
    """
    x, y = _to_target(d, rx, ry, R, T)
    fx, fy, cx, cy = intr[0], intr[1], intr[2], intr[3]
    if mode == _DIST_NONE:
        px = x * fx + cx
        py = y * fy + cy
    elif mode == _DIST_RS_MODIFIED:
        # librealsense's modified Brown-Conrady (tangential terms on the radially scaled x, y), float32
        k1, k2, p1, p2, k3 = np.float32(c[0]), np.float32(c[1]), np.float32(c[2]), np.float32(c[3]), np.float32(c[4])
        one, two = np.float32(1.0), np.float32(2.0)
        r2 = x * x + y * y
        f = one + (k1 * r2 + (k2 * (r2 * r2) + k3 * (r2 * (r2 * r2))))
        xf = x * f
        yf = y * f
        px = (xf + (two * (p1 * (xf * yf)) + p2 * (r2 + two * (xf * xf)))) * fx + cx
        py = (yf + (two * (p2 * (xf * yf)) + p1 * (r2 + two * (yf * yf)))) * fy + cy
    else:  # full OpenCV plumb_bob / rational_polynomial (models not from librealsense), float64
        x64, y64 = np.float64(x), np.float64(y)
        r2 = x64 * x64 + y64 * y64
        radial = (1.0 + r2 * (c[0] + r2 * (c[1] + r2 * c[4]))) / (1.0 + r2 * (c[5] + r2 * (c[6] + r2 * c[7])))
        xd = x64 * radial + 2.0 * c[2] * x64 * y64 + c[3] * (r2 + 2.0 * x64 * x64)
        yd = y64 * radial + c[2] * (r2 + 2.0 * y64 * y64) + 2.0 * c[3] * x64 * y64
        px = np.float32(xd * intr[0] + intr[2])
        py = np.float32(yd * intr[1] + intr[3])
    half = np.float32(0.5)
    u = min(max(_to_int(px + half), np.int32(-1)), np.int32(lim))
    v = min(max(_to_int(py + half), np.int32(-1)), np.int32(lim))
    return u, v


@njit(cache=True, inline="always", error_model="numpy")
def _rects(depth: np.ndarray, scale: np.float32, rx0: np.ndarray, ry0: np.ndarray, rx1: np.ndarray,
           ry1: np.ndarray, R: np.ndarray, T: np.ndarray, intr: np.ndarray, c: np.ndarray, mode: int, splat: bool,
           lim: int, ow: int, oh: int, bw: int, rw: np.ndarray, rh: np.ndarray, rj: np.ndarray) -> None:
    """Each depth pixel's target rectangle, clipped: (width - 1, height - 1, scratch index of its
    top-left pixel); width - 1 = -1 for no depth or an empty rectangle. Without `splat` the
    rectangle is the top-left corner's pixel. Branch-free (SIMD) for constant `mode`, `splat`."""
    for i in range(depth.size):
        raw = depth[i]
        d = np.float32(raw) * scale
        u0, v0 = _corner(d, rx0[i], ry0[i], R, T, intr, c, mode, lim)
        if splat:
            u1, v1 = _corner(d, rx1[i], ry1[i], R, T, intr, c, mode, lim)
        else:
            u1, v1 = u0, v0
        xa = max(u0, np.int32(0))
        ya = max(v0, np.int32(0))
        w = min(u1, np.int32(ow - 1)) - xa
        rw[i] = np.int16(w) if raw != 0 else np.int16(-1)
        rh[i] = np.int16(min(v1, np.int32(oh - 1)) - ya)
        rj[i] = ya * np.int32(bw) + xa


@njit(cache=True, inline="always", error_model="numpy")
def _rects_for(depth: np.ndarray, scale: np.float32, rx0: np.ndarray, ry0: np.ndarray, rx1: np.ndarray,
               ry1: np.ndarray, R: np.ndarray, T: np.ndarray, intr: np.ndarray, c: np.ndarray, mode: int,
               splat: bool, lim: int, ow: int, oh: int, bw: int, rw: np.ndarray, rh: np.ndarray,
               rj: np.ndarray) -> None:
    """_rects with `mode` turned into a constant (one vectorized copy of the loop per mode; a
    run-time mode keeps the loop scalar, 3x slower). `splat` must be a constant already."""
    if mode == _DIST_NONE:
        _rects(depth, scale, rx0, ry0, rx1, ry1, R, T, intr, c, _DIST_NONE, splat, lim, ow, oh, bw, rw, rh, rj)
    elif mode == _DIST_RS_MODIFIED:
        _rects(depth, scale, rx0, ry0, rx1, ry1, R, T, intr, c, _DIST_RS_MODIFIED, splat, lim, ow, oh, bw, rw, rh,
               rj)
    else:
        _rects(depth, scale, rx0, ry0, rx1, ry1, R, T, intr, c, _DIST_OPENCV, splat, lim, ow, oh, bw, rw, rh, rj)


@njit(cache=True, inline="always", error_model="numpy")
def _fill(depth: np.ndarray, rw: np.ndarray, rh: np.ndarray, rj: np.ndarray, buf: np.ndarray, bw: int) -> None:
    """Write each depth over its rectangle, keeping the nearest: buf holds depth - 1 (0 wraps to
    0xFFFF), so "nearest non-zero" is a plain unsigned min. Rectangles up to 3x3 (the common
    case: colour up to ~2x the depth pixels per degree) are one fixed, fully unrolled masked
    3x3 block (min with 0xFFFF is a no-op): no data-dependent loop counts to mispredict,
    2.5x faster than looping over the exact rectangle. Larger ones loop."""
    for i in range(depth.size):
        w, h = np.int64(rw[i]), np.int64(rh[i])
        if w < 0 or h < 0:
            continue
        b = np.uint16(depth[i] - np.uint16(1))
        j = np.uint64(rj[i])  # unsigned indices: no negative-index wraparound code in the loop
        if w == 0 and h == 0:  # depth at least as fine as the target: one pixel
            buf[j] = min(buf[j], b)
        elif w < 3 and h < 3:
            for dy in range(3):
                for dx in range(3):
                    k = j + np.uint64(dy * bw + dx)
                    buf[k] = min(buf[k], b if (dx <= w) & (dy <= h) else _EMPTY)
        else:
            for dy in range(h + 1):
                row = j + np.uint64(dy * bw)
                for dx in range(w + 1):
                    k = row + np.uint64(dx)
                    buf[k] = min(buf[k], b)


@njit(cache=True, nogil=True, error_model="numpy")
def _register(depth: np.ndarray, dw: int, scale: np.float32, rx0: np.ndarray, ry0: np.ndarray, rx1: np.ndarray,
              ry1: np.ndarray, R: np.ndarray, T: np.ndarray, intr: np.ndarray, c: np.ndarray, mode: int,
              splat: bool, lim: int, rows: np.ndarray, rw: np.ndarray, rh: np.ndarray, rj: np.ndarray,
              buf: np.ndarray, out: np.ndarray) -> None:
    """Registration of a whole image, one depth row at a time (its rectangles stay in L1).
    Separable rays (see _corner_rays) are expanded into `rows` (2 x W scratch) per row."""
    oh, ow = out.shape
    bw = ow + _PAD
    separable = rx0.shape[0] == 1
    buf[:] = _EMPTY
    for v in range(depth.size // dw):
        a, z = v * dw, (v + 1) * dw
        d = depth[a:z]
        if separable:
            x0, x1, y0, y1 = rx0[0], rx1[0], rows[0], rows[1]
            y0[:] = ry0[v, 0]
            y1[:] = ry1[v, 0]
        else:
            x0, x1, y0, y1 = rx0[v], rx1[v], ry0[v], ry1[v]
        if splat:  # constant flags: see _rects_for
            _rects_for(d, scale, x0, y0, x1, y1, R, T, intr, c, mode, True, lim, ow, oh, bw, rw, rh, rj)
        else:
            _rects_for(d, scale, x0, y0, x1, y1, R, T, intr, c, mode, False, lim, ow, oh, bw, rw, rh, rj)
        _fill(d, rw, rh, rj, buf, bw)
    one = np.uint16(1)
    for y in range(oh):
        src = np.uint64(y * bw)
        row = out[y]
        for x in range(ow):
            row[np.uint64(x)] = buf[src + np.uint64(x)] + one  # 0xFFFF (no depth) wraps to 0


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
        else:  # both corners the same: a one-pixel rectangle
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
        if self._mode == _DIST_OPENCV and cm.distortion_model == "equidistant":
            raise ValueError("registration into an equidistant (fisheye) camera is not supported")
        self._coeffs = cm.coeffs(8).astype(np.float64)  # librealsense's float32 modes round them in the kernel
        if max(cm.width, cm.height) > 32000:
            raise ValueError(f"target image {cm.width}x{cm.height} is too large (max 32000 pixels a side)")
        self._lim = max(cm.width, cm.height)
        # per-instance scratch, reused every frame (guarded by a lock): one depth row's rays and rectangles
        # and the biased target image with _PAD spare columns and rows
        dw = depth_model.width
        self._lock = threading.Lock()
        self._rows = np.empty((2, dw), np.float32)
        self._rw, self._rh, self._rj = np.empty(dw, np.int16), np.empty(dw, np.int16), np.empty(dw, np.int32)
        self._buf = np.empty((cm.height + _PAD) * (cm.width + _PAD), np.uint16)

    def align(self, depth: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """uint16 depth (depth geometry) -> uint16 depth in the target geometry, 0 = no depth.

        Values are copied unchanged (same units as the input), as rs.align does. Every pixel of
        `out` is written.
        """
        d = np.asarray(depth)
        dm, cm = self.depth_model, self.color_model
        if d.dtype != np.uint16 or d.shape != (dm.height, dm.width):
            raise ValueError(f"align needs uint16 depth of {dm.width}x{dm.height}; got {d.dtype} "
                             f"{d.shape[1] if d.ndim > 1 else '?'}x{d.shape[0]}")
        if out is None:
            out = np.empty((cm.height, cm.width), np.uint16)
        elif out.shape != (cm.height, cm.width) or out.dtype != np.uint16:
            raise ValueError(f"out must be uint16 {cm.width}x{cm.height}")
        flat = np.ascontiguousarray(d).reshape(-1)
        with self._lock:  # the scratch is per instance; the kernel releases the GIL
            _register(flat, dm.width, np.float32(self.depth_scale), self._rx0, self._ry0, self._rx1, self._ry1,
                      self._R, self._T, self._intr, self._coeffs, self._mode, self.splat, self._lim,
                      self._rows, self._rw, self._rh, self._rj, self._buf, out)
        return out

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


def warm_up() -> float:
    """Compile (or load from numba's cache) the registration kernel for both coefficient
    types (float32: pinhole / librealsense targets, float64: OpenCV-distorted targets) on tiny
    images; returns seconds. Run once after installing and at node start-up, so the first
    aligned frameset is not stalled for seconds by the JIT in the middle of a stream."""
    import time

    t0 = time.perf_counter()
    k = [[8.0, 0.0, 4.0], [0.0, 8.0, 3.0], [0.0, 0.0, 1.0]]
    depth = np.full((6, 8), 1000, np.uint16)
    for d in (np.zeros(5), np.array([0.01, 0.0, 0.0, 0.0, 0.0])):
        src = CameraModel(8, 6, k)
        DepthRegistration(src, CameraModel(16, 12, np.array(k) * [[2], [2], [1]], D=d)).align(depth)
    return time.perf_counter() - t0
