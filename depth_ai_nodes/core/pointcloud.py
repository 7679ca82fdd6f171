"""Depth images -> 3D points, and PointCloud2 buffer packing/unpacking, ROS-free.

PointCloud2 data is read by field NAME and OFFSET with any ``point_step`` (drivers pad points to
16 or 32 bytes and order fields as they like), so nothing here assumes a layout. The message
side lives in ``depth_ai_nodes.ros.conversions``.

Depth conventions (REP-118): float depth in metres with NaN or 0 = invalid; integer depth
(16UC1) is scaled by ``depth_scale`` (0.001: millimetres).
"""
from __future__ import annotations

from typing import Iterable, Mapping, NamedTuple

import numpy as np
from numba import njit

from .camera_model import CameraModel
from .transforms import RigidTransform

__all__ = ["FieldSpec", "INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32", "FLOAT32", "FLOAT64",
           "DATATYPES", "Packed", "depth_to_cloud", "depth_to_points", "depth_to_xyzrgb", "pack", "unpack",
           "pack_rgb", "unpack_rgb",
           "PointCloudFormatError"]

# sensor_msgs/PointField datatype codes
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = 1, 2, 3, 4, 5, 6, 7, 8
DATATYPES: dict[int, np.dtype] = {INT8: np.dtype(np.int8), UINT8: np.dtype(np.uint8), INT16: np.dtype(np.int16),
                                  UINT16: np.dtype(np.uint16), INT32: np.dtype(np.int32),
                                  UINT32: np.dtype(np.uint32), FLOAT32: np.dtype(np.float32),
                                  FLOAT64: np.dtype(np.float64)}
_CODES = {v: k for k, v in DATATYPES.items()}


class PointCloudFormatError(ValueError):
    """A PointCloud2 buffer that does not match its field description."""


class FieldSpec(NamedTuple):
    """One sensor_msgs/PointField: name, byte offset in the point, datatype code, element count."""

    name: str
    offset: int
    datatype: int
    count: int = 1

    @property
    def dtype(self) -> np.dtype:
        try:
            return DATATYPES[self.datatype]
        except KeyError:
            raise PointCloudFormatError(f"field {self.name!r} has unknown PointField datatype "
                                        f"{self.datatype} (valid: 1..8)") from None

    @property
    def nbytes(self) -> int:
        return self.dtype.itemsize * max(int(self.count), 1)


# --- depth -> points -------------------------------------------------------------------

@njit(cache=True, nogil=True, error_model="numpy")
def _cloud_kernel(depth: np.ndarray, scale: np.float32, rays: np.ndarray, stride: int, organized: bool,
                  with_color: bool, color: np.ndarray, R: np.ndarray, t: np.ndarray, intr: np.ndarray,
                  coeffs: np.ndarray, distorted: bool, ri: int, bi: int, out: np.ndarray,
                  out_bits: np.ndarray) -> int:
    """Fill ``out`` (N, 3|4) float32 with x, y, z [, packed rgb bits]; returns the point count."""
    h, w = depth.shape
    ch, cw = color.shape[0], color.shape[1]
    nan = np.float32(np.nan)
    n = 0
    for y in range(0, h, stride):
        for x in range(0, w, stride):
            z = np.float32(depth[y, x]) * scale
            if not z > 0:  # 0, negative or NaN: invalid (REP-118)
                if organized:
                    out[n, 0] = nan
                    out[n, 1] = nan
                    out[n, 2] = nan
                    if with_color:
                        out_bits[n, 3] = 0
                    n += 1
                continue
            px = rays[y, x, 0] * z
            py = rays[y, x, 1] * z
            out[n, 0] = px
            out[n, 1] = py
            out[n, 2] = z
            if with_color:
                X = R[0, 0] * px + R[0, 1] * py + R[0, 2] * z + t[0]
                Y = R[1, 0] * px + R[1, 1] * py + R[1, 2] * z + t[1]
                Z = R[2, 0] * px + R[2, 1] * py + R[2, 2] * z + t[2]
                bits = np.uint32(0)
                if Z > 0:
                    xn = X / Z
                    yn = Y / Z
                    if distorted:
                        r2 = xn * xn + yn * yn
                        radial = ((1.0 + r2 * (coeffs[0] + r2 * (coeffs[1] + r2 * coeffs[4])))
                                  / (1.0 + r2 * (coeffs[5] + r2 * (coeffs[6] + r2 * coeffs[7]))))
                        xd = xn * radial + 2.0 * coeffs[2] * xn * yn + coeffs[3] * (r2 + 2.0 * xn * xn)
                        yd = yn * radial + coeffs[2] * (r2 + 2.0 * yn * yn) + 2.0 * coeffs[3] * xn * yn
                        xn, yn = xd, yd
                    u = np.rint(intr[0] * xn + intr[2])
                    v = np.rint(intr[1] * yn + intr[3])
                    if u >= 0 and v >= 0 and u < cw and v < ch:
                        ui, vi = int(u), int(v)
                        bits = ((np.uint32(color[vi, ui, ri]) << np.uint32(16))
                                | (np.uint32(color[vi, ui, 1]) << np.uint32(8)) | np.uint32(color[vi, ui, bi]))
                out_bits[n, 3] = bits
            n += 1
    return n


@njit(cache=True, nogil=True, error_model="numpy")
def _xyz_kernel(depth: np.ndarray, scale: np.float32, rays: np.ndarray, stride: int, organized: bool,
                out: np.ndarray) -> int:
    """XYZ only, branch-free compaction (holes are random, so a branch per pixel mispredicts):
    every pixel is written at slot n; n advances only for valid points unless organized."""
    h, w = depth.shape
    nan = np.float32(np.nan)
    n = 0
    for y in range(0, h, stride):
        for x in range(0, w, stride):
            z = np.float32(depth[y, x]) * scale
            ok = z > 0  # 0, negative or NaN: invalid (REP-118)
            zz = z if ok else nan
            out[n, 0] = rays[y, x, 0] * zz
            out[n, 1] = rays[y, x, 1] * zz
            out[n, 2] = zz
            n += 1 if (ok or organized) else 0
    return n


def depth_to_cloud(depth: np.ndarray, model: CameraModel, stride: int = 1, organized: bool = False,
                   depth_scale: float = 0.001, color: np.ndarray | None = None,
                   color_model: CameraModel | None = None, depth_to_color: RigidTransform | None = None,
                   color_order: str = "rgb") -> np.ndarray:
    """Depth (+ colour) -> one float32 array (N, 3) x y z, or (N, 4) with the packed-rgb float.

    The layout of an x, y, z[, rgb] PointCloud2 (point_step 12 / 16), so ``arr.tobytes()`` is the
    message data. One numba pass; see ``depth_to_points`` / ``depth_to_xyzrgb`` for the semantics.
    Organized output is (H' * W', C) in row order with NaN (rgb 0) for invalid pixels.
    """
    stride = int(stride)
    if stride < 1:
        raise ValueError(f"stride must be >= 1; got {stride}")
    d = np.asarray(depth)
    if d.ndim != 2 or d.shape != model.shape:
        raise ValueError(f"depth image {d.shape[1] if d.ndim > 1 else '?'}x{d.shape[0]} does not match the "
                         f"camera model {model.width}x{model.height}")
    if not (np.issubdtype(d.dtype, np.integer) or np.issubdtype(d.dtype, np.floating)):
        raise ValueError(f"depth must be integer (scaled by depth_scale) or float metres; got {d.dtype}")
    scale = np.float32(depth_scale if np.issubdtype(d.dtype, np.integer) else 1.0)
    with_color = color is not None
    if color_order not in ("rgb", "bgr"):
        raise ValueError(f"color_order must be 'rgb' or 'bgr'; got {color_order!r}")
    ri, bi = (0, 2) if color_order == "rgb" else (2, 0)
    if with_color:
        c = np.asarray(color)
        if c.ndim == 2:
            c = np.repeat(c[:, :, None], 3, axis=2)
        if c.dtype != np.uint8 or c.ndim != 3 or c.shape[2] < 3:
            raise ValueError(f"colour must be uint8 (H, W, 3|4) or (H, W); got {c.dtype} {c.shape}")
        if color_model is None:
            if c.shape[:2] != d.shape:
                raise ValueError(f"colour {c.shape[1]}x{c.shape[0]} is not registered to depth "
                                 f"{d.shape[1]}x{d.shape[0]}; pass color_model and depth_to_color")
            cm, T = model, None
        else:
            cm, T = color_model, depth_to_color
            if c.shape[:2] != cm.shape:
                raise ValueError(f"colour {c.shape[1]}x{c.shape[0]} does not match its camera model "
                                 f"{cm.width}x{cm.height}")
        if cm.distortion_model == "equidistant" and cm.has_distortion:
            raise ValueError("colouring points through an equidistant (fisheye) camera is not supported")
        R = np.eye(3) if T is None else T.R
        t = np.zeros(3) if T is None else T.t
        intr = np.array([cm.fx, cm.fy, cm.cx, cm.cy])
        coeffs = cm.coeffs(8)
        distorted = cm.has_distortion and color_model is not None
    else:
        c = np.zeros((1, 1, 3), np.uint8)
        R, t, intr, coeffs, distorted = np.eye(3), np.zeros(3), np.ones(4), np.zeros(8), False
    hs, ws = -(-d.shape[0] // stride), -(-d.shape[1] // stride)
    out = np.empty((hs * ws, 4 if with_color else 3), np.float32)
    if not with_color:
        n = _xyz_kernel(d, scale, model.ray_grid(), stride, organized, out)
        return out if n == out.shape[0] else out[:n]
    n = _cloud_kernel(d, scale, model.ray_grid(), stride, organized, with_color, c,
                      np.ascontiguousarray(R, np.float64), np.ascontiguousarray(t, np.float64), intr,
                      coeffs, distorted, ri, bi, out, out.view(np.uint32))
    return out if n == out.shape[0] else out[:n]


def depth_to_points(depth: np.ndarray, model: CameraModel, stride: int = 1, organized: bool = False,
                    depth_scale: float = 0.001) -> np.ndarray:
    """Depth image -> points in the depth optical frame (float32).

    ``stride`` keeps every stride-th pixel in both directions. Unorganized: (N, 3) of the valid
    pixels only (0/NaN depth dropped). Organized: (H', W', 3) with NaN for invalid pixels.
    Integer depth is scaled by ``depth_scale``; float depth is metres.
    """
    pts = depth_to_cloud(depth, model, stride, organized, depth_scale)
    if organized:
        return pts.reshape(-(-model.height // int(stride)), -(-model.width // int(stride)), 3)
    return pts


def depth_to_xyzrgb(depth: np.ndarray, model: CameraModel, color: np.ndarray,
                    color_model: CameraModel | None = None, depth_to_color: RigidTransform | None = None,
                    stride: int = 1, organized: bool = False, depth_scale: float = 0.001,
                    color_order: str = "rgb") -> tuple[np.ndarray, np.ndarray]:
    """Depth + colour image -> (points float32 (N,3) or (H',W',3), packed rgb float32 (N,) or (H',W')).

    Without ``color_model`` the colour image must be registered to the depth image (same size).
    With it, each point is projected into the colour camera (through ``depth_to_color``, full
    distortion) and takes the nearest pixel, like rs.pointcloud's texture mapping; points outside
    the colour image get rgb 0 (black).
    """
    cloud = depth_to_cloud(depth, model, stride, organized, depth_scale, color, color_model, depth_to_color,
                           color_order)
    pts, rgb = cloud[:, :3], cloud[:, 3]
    if organized:
        shape = (-(-model.height // int(stride)), -(-model.width // int(stride)))
        return pts.reshape(shape + (3,)), rgb.reshape(shape)
    return pts, rgb


# --- packed rgb (PCL / rviz convention) -------------------------------------------------

def pack_rgb(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """uint8 r, g, b -> float32 whose bits are 0x00RRGGBB (the PCL 'rgb' field rviz reads)."""
    u = (np.asarray(r, np.uint32) << 16) | (np.asarray(g, np.uint32) << 8) | np.asarray(b, np.uint32)
    return np.ascontiguousarray(u, dtype=np.uint32).view(np.float32)


def unpack_rgb(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 (or uint32) packed rgb -> uint8 r, g, b."""
    u = np.ascontiguousarray(rgb)
    u = u.view(np.uint32) if u.dtype == np.float32 else u.astype(np.uint32)
    return ((u >> 16) & 0xFF).astype(np.uint8), ((u >> 8) & 0xFF).astype(np.uint8), (u & 0xFF).astype(np.uint8)


# --- PointCloud2 buffers --------------------------------------------------------------

class Packed(tuple):
    """``(specs, point_step, data)`` as returned by ``pack``, plus ``.count`` and ``.is_dense``."""

    count: int
    is_dense: bool

    def __new__(cls, specs: list[FieldSpec], point_step: int, data: bytes, count: int, is_dense: bool) -> "Packed":
        obj = super().__new__(cls, (specs, point_step, data))
        obj.count, obj.is_dense = count, is_dense
        return obj

    @property
    def specs(self) -> list[FieldSpec]:
        return self[0]

    @property
    def point_step(self) -> int:
        return self[1]

    @property
    def data(self) -> bytes:
        return self[2]


def pack(fields: Mapping[str, np.ndarray], point_step: int | None = None, drop_invalid: bool = False) -> Packed:
    """Per-point arrays -> ``(specs, point_step, data bytes)`` (a ``Packed`` that also has
    ``.count`` and ``.is_dense``).

    ``fields`` maps name -> (N,) or (N, count) array (or any shape whose leading dims flatten to N);
    fields are laid out in order at natural offsets; ``point_step`` larger than the sum pads each
    point. ``drop_invalid`` removes points whose x, y or z is not finite; ``is_dense`` is True when
    no remaining point has a non-finite x/y/z.
    """
    if not fields:
        raise PointCloudFormatError("a point cloud needs at least one field")
    arrays: dict[str, np.ndarray] = {}
    n = None
    for name, arr in fields.items():
        a = np.asarray(arr)
        if a.dtype not in _CODES:
            raise PointCloudFormatError(f"field {name!r} has dtype {a.dtype}, which PointField cannot describe")
        if a.ndim <= 1:
            flat = a.reshape(-1)
        else:  # (N, count), or any shape whose leading dims flatten to the first field's N
            flat = a.reshape(a.shape[0], -1) if n is None or a.shape[0] == n else a.reshape(n, -1)
        cnt = flat.shape[0]
        if n is None:
            n = cnt
        elif cnt != n:
            raise PointCloudFormatError(f"field {name!r} has {cnt} points; the first field has {n}")
        arrays[name] = flat
    assert n is not None
    specs: list[FieldSpec] = []
    offset = 0
    formats = []
    for name, a in arrays.items():
        count = 1 if a.ndim == 1 else a.shape[1]
        specs.append(FieldSpec(name, offset, _CODES[a.dtype.newbyteorder("=")], count))
        formats.append((a.dtype.newbyteorder("<"), (count,)) if count > 1 else a.dtype.newbyteorder("<"))
        offset += a.dtype.itemsize * count
    step = offset if point_step is None else int(point_step)
    if step < offset:
        raise PointCloudFormatError(f"point_step {step} is smaller than the fields need ({offset} bytes)")
    valid = np.ones(n, bool)
    if all(k in arrays for k in "xyz"):
        valid = np.isfinite(arrays["x"]) & np.isfinite(arrays["y"]) & np.isfinite(arrays["z"])
        if valid.ndim > 1:
            valid = valid.all(axis=1)
    if drop_invalid and not valid.all():
        arrays = {k: v[valid] for k, v in arrays.items()}
        n = int(valid.sum())
        valid = np.ones(n, bool)
    dt = np.dtype({"names": list(arrays), "formats": formats, "offsets": [s.offset for s in specs], "itemsize": step})
    buf = np.zeros(n, dtype=dt)
    for name, a in arrays.items():
        buf[name] = a
    return Packed(specs, step, buf.tobytes(), n, bool(valid.all()))


def _structured_dtype(specs: Iterable[FieldSpec], point_step: int, names: list[str], is_bigendian: bool) -> np.dtype:
    by_name = {}
    for s in specs:
        by_name.setdefault(s.name, s)
    order = ">" if is_bigendian else "<"
    fmts, offs = [], []
    for name in names:
        s = by_name.get(name)
        if s is None:
            raise PointCloudFormatError(f"point cloud has no field {name!r}; it has {', '.join(by_name) or 'none'}")
        if s.offset < 0 or s.offset + s.nbytes > point_step:
            raise PointCloudFormatError(f"field {name!r} (offset {s.offset}, {s.nbytes} bytes) does not fit in "
                                        f"point_step {point_step}")
        dt = s.dtype.newbyteorder(order)
        fmts.append((dt, (s.count,)) if s.count > 1 else dt)
        offs.append(s.offset)
    return np.dtype({"names": names, "formats": fmts, "offsets": offs, "itemsize": point_step})


def unpack(specs: Iterable[FieldSpec], point_step: int, data: bytes | bytearray | memoryview | np.ndarray,
           names: Iterable[str] | None = None, count: int | None = None, is_bigendian: bool = False,
           drop_invalid: bool = False) -> dict[str, np.ndarray]:
    """PointCloud2 buffer -> {name: (N,) or (N, count) array}, read by name and offset.

    Little-endian fields come back as zero-copy strided views of ``data`` (read-only for bytes);
    big-endian ones as native copies. ``count`` (width*height) is checked against the data size.
    ``drop_invalid`` removes points with non-finite x/y/z (for clouds that are not dense).
    """
    specs = [FieldSpec(*s) if not isinstance(s, FieldSpec) else s for s in specs]
    point_step = int(point_step)
    if point_step <= 0:
        raise PointCloudFormatError(f"point_step must be positive; got {point_step}")
    names = [s.name for s in specs] if names is None else list(names)
    buf = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1).view(np.uint8)
    n = buf.size // point_step if count is None else int(count)
    if buf.size < n * point_step:
        raise PointCloudFormatError(f"point cloud data has {buf.size} bytes; {n} points of {point_step} bytes "
                                    f"need {n * point_step}")
    if count is None and buf.size % point_step:
        raise PointCloudFormatError(f"point cloud data size {buf.size} is not a multiple of point_step {point_step}")
    dt = _structured_dtype(specs, point_step, names, is_bigendian)
    rec = np.frombuffer(buf[: n * point_step], dtype=dt, count=n) if n else np.zeros(0, dt)
    out: dict[str, np.ndarray] = {}
    for name in names:
        a = rec[name]
        if is_bigendian and a.dtype.itemsize > 1:
            a = a.astype(a.dtype.newbyteorder("="))
        out[name] = a
    if drop_invalid and all(k in out for k in "xyz"):
        ok = np.isfinite(out["x"]) & np.isfinite(out["y"]) & np.isfinite(out["z"])
        if not ok.all():
            out = {k: v[ok] for k, v in out.items()}
    return out
