"""Pinhole camera model with OpenCV/ROS distortion, ROS-free.

The one description of camera intrinsics in the project: CameraInfo messages, librealsense
intrinsics and the built-in scene all convert to and from it, so resizing, cropping and
decimation are implemented once and stay consistent with the images they describe.

Distortion models (sensor_msgs/CameraInfo names):
- ``plumb_bob``: D = k1, k2, p1, p2, k3 (Brown-Conrady, OpenCV order). Zeros = no distortion.
- ``rational_polynomial``: D = k1, k2, p1, p2, k3, k4, k5, k6.
- ``equidistant``: D = k1..k4 (OpenCV fisheye).
- ``none`` / empty D: undistorted pinhole.

Pixel convention: integer (u, v) is the CENTER of a pixel (OpenCV, ROS, librealsense).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

__all__ = ["CameraModel", "DISTORTION_MODELS"]

DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant", "none")

# librealsense rs2_distortion names -> CameraInfo model (realsense-ros does the same)
_RS_TO_ROS = {"none": "plumb_bob", "brown_conrady": "plumb_bob", "inverse_brown_conrady": "plumb_bob",
              "modified_brown_conrady": "plumb_bob", "kannala_brandt4": "equidistant",
              "ftheta": "equidistant"}

_UNDISTORT_ITERATIONS = 20
_RAY_GRIDS: dict[tuple, np.ndarray] = {}  # shared by equal models (a node rebuilding models per message)


@njit(cache=True, nogil=True, error_model="numpy")
def _undistort_kernel(x0: np.ndarray, y0: np.ndarray, c: np.ndarray, iterations: int,
                      xo: np.ndarray, yo: np.ndarray) -> None:
    """OpenCV's fixed-point undistortion, then Newton steps with the analytic Jacobian."""
    k1, k2, p1, p2, k3, k4, k5, k6 = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    for i in range(x0.size):
        xd, yd = x0[i], y0[i]
        x, y = xd, yd
        for _ in range(iterations):
            r2 = x * x + y * y
            icdist = (1.0 + r2 * (k4 + r2 * (k5 + r2 * k6))) / (1.0 + r2 * (k1 + r2 * (k2 + r2 * k3)))
            x = (xd - (2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x))) * icdist
            y = (yd - (p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y)) * icdist
        for _ in range(4):
            r2 = x * x + y * y
            num = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
            den = 1.0 + r2 * (k4 + r2 * (k5 + r2 * k6))
            dnum = k1 + r2 * (2.0 * k2 + 3.0 * r2 * k3)
            dden = k4 + r2 * (2.0 * k5 + 3.0 * r2 * k6)
            rad = num / den
            drad = (dnum * den - num * dden) / (den * den)  # d rad / d r2
            fx = x * rad + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x) - xd
            fy = y * rad + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y - yd
            a = rad + x * drad * 2.0 * x + 2.0 * p1 * y + 6.0 * p2 * x
            b = x * drad * 2.0 * y + 2.0 * p1 * x + 2.0 * p2 * y
            cc = y * drad * 2.0 * x + 2.0 * p1 * x + 2.0 * p2 * y
            d = rad + y * drad * 2.0 * y + 6.0 * p1 * y + 2.0 * p2 * x
            det = a * d - b * cc
            if det != 0.0 and det == det:
                x -= (d * fx - b * fy) / det
                y -= (a * fy - cc * fx) / det
        xo[i] = x
        yo[i] = y


@dataclass(eq=False)
class CameraModel:
    """Intrinsics of one image stream.

    ``rs_model`` keeps the librealsense distortion name when the model came from
    ``from_rs_intrinsics`` (registration uses it to reproduce rs.align exactly); empty otherwise.
    """

    width: int
    height: int
    K: np.ndarray
    D: np.ndarray = field(default_factory=lambda: np.zeros(5))
    distortion_model: str = "plumb_bob"
    frame_id: str = ""
    rs_model: str = ""
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.width, self.height = int(self.width), int(self.height)
        self.K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        self.D = np.asarray(self.D if self.D is not None else [], dtype=np.float64).reshape(-1)
        if self.distortion_model == "":
            self.distortion_model = "plumb_bob"
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera size must be positive; got {self.width}x{self.height}")
        if self.distortion_model not in DISTORTION_MODELS:
            raise ValueError(f"unsupported distortion model {self.distortion_model!r}; "
                             f"use one of {', '.join(DISTORTION_MODELS)}")
        if not (self.K[0, 0] > 0 and self.K[1, 1] > 0) or not np.all(np.isfinite(self.K)):
            raise ValueError(f"K must have positive finite fx, fy; got fx={self.K[0, 0]}, fy={self.K[1, 1]}")
        if not np.all(np.isfinite(self.D)):
            raise ValueError("distortion coefficients must be finite")
        need = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4, "none": 0}[self.distortion_model]
        if self.D.size > need and np.any(self.D[need:]) and self.distortion_model != "none":
            raise ValueError(f"{self.distortion_model} takes {need} coefficients; got {self.D.size} "
                             f"with non-zero extras")

    # --- basic properties ------------------------------------------------------------
    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.width, self.height

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width), as the numpy image has it."""
        return self.height, self.width

    @property
    def has_distortion(self) -> bool:
        return self.distortion_model != "none" and bool(np.any(self.D != 0))

    def coeffs(self, n: int = 8) -> np.ndarray:
        """Distortion coefficients zero-padded to n."""
        out = np.zeros(max(n, self.D.size))
        out[: self.D.size] = self.D
        return out[:n]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CameraModel):
            return NotImplemented
        return (self.width == other.width and self.height == other.height
                and np.array_equal(self.K, other.K)
                and np.array_equal(self.coeffs(8), other.coeffs(8))
                and (self.distortion_model == other.distortion_model
                     or not (self.has_distortion or other.has_distortion))
                and self.frame_id == other.frame_id)

    def copy(self, **changes: Any) -> "CameraModel":
        kw = dict(width=self.width, height=self.height, K=self.K.copy(), D=self.D.copy(),
                  distortion_model=self.distortion_model, frame_id=self.frame_id, rs_model=self.rs_model)
        kw.update(changes)
        return CameraModel(**kw)

    # --- distortion in normalized coordinates --------------------------------------
    def distort(self, xy: np.ndarray) -> np.ndarray:
        """Undistorted normalized (N,2) -> distorted normalized (N,2)."""
        xy = np.asarray(xy, dtype=np.float64)
        if not self.has_distortion:
            return xy.copy()
        x, y = xy[..., 0], xy[..., 1]
        if self.distortion_model == "equidistant":
            k = self.coeffs(4)
            r = np.sqrt(x * x + y * y)
            th = np.arctan(r)
            th2 = th * th
            thd = th * (1 + th2 * (k[0] + th2 * (k[1] + th2 * (k[2] + th2 * k[3]))))
            s = np.where(r > 1e-12, thd / np.where(r > 1e-12, r, 1.0), 1.0)
            return np.stack([x * s, y * s], axis=-1)
        k1, k2, p1, p2, k3, k4, k5, k6 = self.coeffs(8)
        r2 = x * x + y * y
        radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        return np.stack([xd, yd], axis=-1)

    def undistort_normalized(self, xyd: np.ndarray) -> np.ndarray:
        """Distorted normalized (N,2) -> undistorted normalized (N,2), iteratively (OpenCV's scheme)."""
        xyd = np.asarray(xyd, dtype=np.float64)
        if not self.has_distortion:
            return xyd.copy()
        x0, y0 = xyd[..., 0], xyd[..., 1]
        if self.distortion_model == "equidistant":
            k = self.coeffs(4)
            thd = np.sqrt(x0 * x0 + y0 * y0)
            th = thd.copy()
            for _ in range(_UNDISTORT_ITERATIONS):  # Newton on theta_d(theta) = thd
                t2 = th * th
                f = th * (1 + t2 * (k[0] + t2 * (k[1] + t2 * (k[2] + t2 * k[3])))) - thd
                df = 1 + t2 * (3 * k[0] + t2 * (5 * k[1] + t2 * (7 * k[2] + 9 * t2 * k[3])))
                th = th - f / df
            s = np.where(thd > 1e-12, np.tan(th) / np.where(thd > 1e-12, thd, 1.0), 1.0)
            return np.stack([x0 * s, y0 * s], axis=-1)
        shape = x0.shape
        xf = np.ascontiguousarray(x0, np.float64).reshape(-1)
        yf = np.ascontiguousarray(y0, np.float64).reshape(-1)
        xo, yo = np.empty_like(xf), np.empty_like(yf)
        _undistort_kernel(xf, yf, self.coeffs(8), 5, xo, yo)  # OpenCV's 5 fixed-point steps, then Newton
        return np.stack([xo.reshape(shape), yo.reshape(shape)], axis=-1)

    # --- pixels <-> rays <-> points ------------------------------------------------
    def project(self, points: np.ndarray) -> np.ndarray:
        """(N,3) points in the optical frame -> (N,2) pixel coordinates through the distortion.

        Points with z <= 0 give NaN.
        """
        p = np.asarray(points, dtype=np.float64)
        z = p[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            zs = np.where(z > 0, z, np.nan)
            xy = np.stack([p[..., 0] / zs, p[..., 1] / zs], axis=-1)
        d = self.distort(xy)
        return np.stack([self.fx * d[..., 0] + self.cx, self.fy * d[..., 1] + self.cy], axis=-1)

    def undistort_points(self, uv: np.ndarray) -> np.ndarray:
        """(N,2) pixels -> (N,2) undistorted normalized coordinates (x/z, y/z)."""
        uv = np.asarray(uv, dtype=np.float64)
        xyd = np.stack([(uv[..., 0] - self.cx) / self.fx, (uv[..., 1] - self.cy) / self.fy], axis=-1)
        return self.undistort_normalized(xyd)

    def deproject(self, uv: np.ndarray, z: np.ndarray | float) -> np.ndarray:
        """(N,2) pixels + depth along the optical axis (N,) -> (N,3) points."""
        xy = self.undistort_points(uv)
        z = np.broadcast_to(np.asarray(z, dtype=np.float64), xy.shape[:-1])
        return np.stack([xy[..., 0] * z, xy[..., 1] * z, z], axis=-1)

    def ray_grid(self) -> np.ndarray:
        """(H, W, 2) float32 undistorted x/z, y/z of every pixel center; computed once per intrinsics
        (shared between equal models), read-only."""
        grid = self._cache.get("ray_grid")
        if grid is None:
            key = (self.width, self.height, self.K.tobytes(), self.coeffs(8).tobytes(), self.distortion_model)
            grid = _RAY_GRIDS.get(key)
            if grid is None:
                u, v = np.meshgrid(np.arange(self.width, dtype=np.float64), np.arange(self.height, dtype=np.float64))
                grid = self.undistort_points(np.stack([u, v], axis=-1)).astype(np.float32)
                grid.setflags(write=False)
                if len(_RAY_GRIDS) >= 16:
                    _RAY_GRIDS.pop(next(iter(_RAY_GRIDS)))
                _RAY_GRIDS[key] = grid
            self._cache["ray_grid"] = grid
        return grid

    def in_image(self, uv: np.ndarray) -> np.ndarray:
        """Mask of pixel coordinates that fall on the image (pixel areas, -0.5 .. size-0.5)."""
        uv = np.asarray(uv)
        return ((uv[..., 0] >= -0.5) & (uv[..., 0] < self.width - 0.5)
                & (uv[..., 1] >= -0.5) & (uv[..., 1] < self.height - 0.5))

    # --- geometry changes -----------------------------------------------------------
    def scaled(self, sx: float, sy: float | None = None) -> "CameraModel":
        """Intrinsics of the image resized by (sx, sy) (pixel-area convention: corners map to corners)."""
        sy = sx if sy is None else sy
        k = self.K.copy()
        k[0, 0] *= sx
        k[0, 1] *= sx
        k[1, 1] *= sy
        k[0, 2] = (k[0, 2] + 0.5) * sx - 0.5
        k[1, 2] = (k[1, 2] + 0.5) * sy - 0.5
        return self.copy(width=int(round(self.width * sx)), height=int(round(self.height * sy)), K=k,
                         rs_model="")

    def resized(self, width: int, height: int) -> "CameraModel":
        """Intrinsics of the image resized to width x height (e.g. cv2.resize)."""
        m = self.scaled(width / self.width, height / self.height)
        return m.copy(width=int(width), height=int(height))

    def cropped(self, x0: int, y0: int, width: int, height: int) -> "CameraModel":
        """Intrinsics of image[y0:y0+height, x0:x0+width]."""
        if x0 < 0 or y0 < 0 or width <= 0 or height <= 0 or x0 + width > self.width or y0 + height > self.height:
            raise ValueError(f"crop {x0},{y0} {width}x{height} does not fit in {self.width}x{self.height}")
        k = self.K.copy()
        k[0, 2] -= x0
        k[1, 2] -= y0
        return self.copy(width=int(width), height=int(height), K=k)

    def decimated(self, factor: int) -> "CameraModel":
        """Intrinsics as librealsense's decimation filter reports them for Z16.

        The filter divides fx, fy, ppx, ppy by the factor and outputs floor(size / factor)
        rounded UP to a multiple of 4 (zero-padded), so the model describes the padded image.
        """
        f = int(factor)
        if f < 1:
            raise ValueError(f"decimation factor must be >= 1; got {factor}")
        if f == 1:
            return self.copy()
        w, h = self.width // f, self.height // f
        k = self.K.copy()
        k[:2, :] /= f
        return self.copy(width=(w + 3) // 4 * 4, height=(h + 3) // 4 * 4, K=k)

    # --- librealsense ---------------------------------------------------------------
    @classmethod
    def from_rs_intrinsics(cls, intr: Any, frame_id: str = "") -> "CameraModel":
        """From ``pyrealsense2.intrinsics`` (or ``video_stream_profile.get_intrinsics()``)."""
        rs_name = str(intr.model).split(".")[-1]
        model = _RS_TO_ROS.get(rs_name, "plumb_bob")
        coeffs = list(intr.coeffs)
        d = np.array(coeffs[:4] if model == "equidistant" else coeffs[:5], dtype=np.float64)
        k = np.array([[intr.fx, 0.0, intr.ppx], [0.0, intr.fy, intr.ppy], [0.0, 0.0, 1.0]])
        return cls(width=int(intr.width), height=int(intr.height), K=k, D=d, distortion_model=model,
                   frame_id=frame_id, rs_model=rs_name)

    def to_rs_intrinsics(self) -> Any:
        """A ``pyrealsense2.intrinsics`` (for software devices); distortion kept as rs_model or brown_conrady."""
        import pyrealsense2 as rs

        intr = rs.intrinsics()
        intr.width, intr.height = self.width, self.height
        intr.fx, intr.fy, intr.ppx, intr.ppy = self.fx, self.fy, self.cx, self.cy
        name = self.rs_model or ("none" if not self.has_distortion else
                                 "kannala_brandt4" if self.distortion_model == "equidistant" else "brown_conrady")
        intr.model = getattr(rs.distortion, name)
        intr.coeffs = [float(c) for c in self.coeffs(5)]
        return intr
