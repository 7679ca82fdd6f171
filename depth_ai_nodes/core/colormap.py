"""Colourising depth, confidence and IR for pictures (PNG previews, eval images).

ROS-free numpy. Turbo (Google's perceptual rainbow, polynomial approximation by
its author) for depth: near = blue, far = red, invalid = black, with the range
from robust percentiles of the valid pixels so one far outlier does not wash
the picture out. No OpenCV needed (it is an optional extra).
"""
from __future__ import annotations

import numpy as np

# Turbo polynomial coefficients (Anton Mikhailov, Google, 2019; Apache-2.0).
_R = (0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943)
_G = (0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604)
_B = (0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973)


def turbo(x: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> float32 RGB in [0, 1] (shape + (3,))."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    powers = [np.ones_like(x), x]
    for _ in range(4):
        powers.append(powers[-1] * x)
    out = np.empty(x.shape + (3,), np.float32)
    for c, coeffs in enumerate((_R, _G, _B)):
        out[..., c] = sum(k * p for k, p in zip(coeffs, powers))
    return np.clip(out, 0.0, 1.0)


def depth_range(depth: np.ndarray, percentiles: tuple[float, float] = (2.0, 98.0)
                ) -> tuple[float, float]:
    """Robust (near, far) of the valid (finite, > 0) values; (0, 1) if none."""
    d = np.asarray(depth, dtype=np.float32)
    valid = d[np.isfinite(d) & (d > 0)]
    if valid.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(valid, percentiles)
    if hi <= lo:
        hi = lo + 1e-3
    return float(lo), float(hi)


def colorize_depth(depth: np.ndarray, near: float | None = None, far: float | None = None,
                   invalid: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Depth (any unit; 0 or NaN invalid, REP-118) -> rgb8, turbo, near blue, far red."""
    d = np.asarray(depth, dtype=np.float32)
    if near is None or far is None:
        lo, hi = depth_range(d)
        near = lo if near is None else near
        far = hi if far is None else far
    valid = np.isfinite(d) & (d > 0)
    x = np.where(valid, (d - near) / max(far - near, 1e-6), 0.0)
    rgb = (turbo(x) * 255.0 + 0.5).astype(np.uint8)
    rgb[~valid] = invalid
    return rgb


def colorize_unit(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (confidence) -> rgb8 turbo; NaN black."""
    v = np.asarray(values, dtype=np.float32)
    rgb = (turbo(np.nan_to_num(v, nan=0.0)) * 255.0 + 0.5).astype(np.uint8)
    rgb[~np.isfinite(v)] = 0
    return rgb


def gray_to_rgb(image: np.ndarray) -> np.ndarray:
    """mono8 / mono16 -> rgb8 (mono16 stretched to its robust range)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        lo, hi = np.percentile(img, (1.0, 99.0)) if img.size else (0, 1)
        img = np.clip((img.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-6)), 0, 255)
        img = img.astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2)


def overlay_sparse_depth(base_rgb: np.ndarray, sparse_depth: np.ndarray, radius: int = 1,
                         near: float | None = None, far: float | None = None) -> np.ndarray:
    """Draw the valid pixels of a sparse depth image (e.g. LiDAR projected into the
    camera) as turbo-coloured dots of (2 radius + 1)^2 pixels on a copy of `base_rgb`.
    The sparse image is resampled (nearest) when its size differs."""
    out = np.array(base_rgb, dtype=np.uint8, copy=True)
    h, w = out.shape[:2]
    d = np.asarray(sparse_depth, dtype=np.float32)
    vs, us = np.nonzero(np.isfinite(d) & (d > 0))
    if vs.size == 0:
        return out
    z = d[vs, us]
    sh, sw = d.shape[:2]
    if (sh, sw) != (h, w):
        us = ((us + 0.5) * (w / sw)).astype(np.int64)
        vs = ((vs + 0.5) * (h / sh)).astype(np.int64)
    lo, hi = depth_range(z) if near is None or far is None else (near, far)
    colors = (turbo((z - lo) / max(hi - lo, 1e-6)) * 255.0 + 0.5).astype(np.uint8)
    order = np.argsort(-z)  # far first, so nearer points are drawn on top
    us, vs, colors = us[order], vs[order], colors[order]
    for dv in range(-radius, radius + 1):
        for du in range(-radius, radius + 1):
            u, v = us + du, vs + dv
            ok = (u >= 0) & (u < w) & (v >= 0) & (v < h)
            out[v[ok], u[ok]] = colors[ok]
    return out
