"""Sensor-like hole masks for evaluating depth completion on real frames.

Real depth sensors lose data in spatially coherent places: in bands along
depth discontinuities (occlusion shadows, flying pixels), on dark or specular
surfaces (no IR return / saturated), and in random blobs. Uniformly random
pixel dropout is far too easy for any filler, so the evaluation hides valid
pixels in those patterns instead. ROS-free, numpy only, deterministic by seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("edges", "dark", "specular", "blobs")


def box_mean(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges clamped (integral image, O(1) per pixel)."""
    if r <= 0:
        return a.astype(np.float64, copy=True)
    p = np.pad(a.astype(np.float64), r + 1, mode="edge")
    c = p.cumsum(0).cumsum(1)
    k = 2 * r + 1
    s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return s[: a.shape[0], : a.shape[1]] / (k * k)


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation by a square of radius r."""
    return box_mean(mask.astype(np.float64), r) > 1e-9 if r > 0 else mask.copy()


def luminance(rgb: np.ndarray) -> np.ndarray:
    """0..1 luminance of an (H, W, 3) uint8/float rgb or an (H, W) grey image."""
    img = np.asarray(rgb, dtype=np.float64)
    if img.max(initial=0.0) > 1.5:
        img = img / 255.0
    if img.ndim == 2:
        return img
    return 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]


def depth_edges(depth_m: np.ndarray, rel_jump: float = 0.04) -> np.ndarray:
    """Pixels next to a depth discontinuity (relative jump to a 4-neighbour > rel_jump)."""
    d = np.nan_to_num(np.asarray(depth_m, dtype=np.float64), nan=0.0)
    valid = d > 0
    edge = np.zeros(d.shape, dtype=bool)
    for a, b, sl_a, sl_b in (
            (d[:, 1:], d[:, :-1], (slice(None), slice(1, None)), (slice(None), slice(None, -1))),
            (d[1:, :], d[:-1, :], (slice(1, None), slice(None)), (slice(None, -1), slice(None)))):
        both = (a > 0) & (b > 0)
        jump = both & (np.abs(a - b) > rel_jump * np.minimum(a, b))
        # an invalid neighbour is a discontinuity too (sensor holes sit on edges)
        jump |= (a > 0) != (b > 0)
        edge[sl_a] |= jump
        edge[sl_b] |= jump
    return edge & valid


def smooth_noise(shape: tuple[int, int], rng: np.random.Generator, scale_px: float) -> np.ndarray:
    """Zero-mean, unit-ish smooth random field with features about scale_px wide."""
    h, w = shape
    gh, gw = max(2, int(np.ceil(h / scale_px)) + 2), max(2, int(np.ceil(w / scale_px)) + 2)
    g = rng.standard_normal((gh, gw))
    ys = np.linspace(0, gh - 1.001, h)
    xs = np.linspace(0, gw - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)  # smoothstep
    a = g[y0][:, x0]
    b = g[y0][:, x0 + 1]
    c = g[y0 + 1][:, x0]
    d = g[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


@dataclass
class HoleMaskConfig:
    """Fraction range of valid pixels to hide, and which hole kinds to mix."""

    min_fraction: float = 0.05
    max_fraction: float = 0.30
    kinds: tuple[str, ...] = KINDS


def make_hole_mask(depth_m: np.ndarray, rgb: np.ndarray | None, seed: int,
                   fraction: float | None = None,
                   config: HoleMaskConfig | None = None, scale: float | None = None) -> np.ndarray:
    """A bool mask of VALID pixels to hide (True = hidden), sensor-like and seeded.

    A priority field mixes the hole kinds (each with a random weight): bands along
    depth edges, dark and very bright (specular) image regions, and smooth random
    blobs; the top `fraction` of valid pixels by priority are hidden, so holes are
    spatially coherent and the hidden fraction is exact. `fraction` defaults to a
    seeded draw in [min_fraction, max_fraction]. `scale` sizes the holes (1.0: those of a
    640-pixel-wide frame); by default it follows the image width, so a crop of a frame
    needs the frame's scale to get the frame's holes."""
    cfg = config or HoleMaskConfig()
    unknown = set(cfg.kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown hole kinds {sorted(unknown)}; use {KINDS}")
    rng = np.random.default_rng(seed)
    d = np.nan_to_num(np.asarray(depth_m, dtype=np.float64), nan=0.0)
    valid = d > 0
    h, w = d.shape
    if fraction is None:
        fraction = float(rng.uniform(cfg.min_fraction, cfg.max_fraction))
    n_valid = int(valid.sum())
    n_hide = int(round(fraction * n_valid))
    if n_hide <= 0:
        return np.zeros((h, w), dtype=bool)
    scale = max(h, w) / 640.0 if scale is None else float(scale)
    # base: smooth blobs everywhere (breaks other kinds into pieces too)
    prio = smooth_noise((h, w), rng, 24.0 * scale) * (0.6 if "blobs" in cfg.kinds else 0.15)
    if "edges" in cfg.kinds:
        band = box_mean(depth_edges(d).astype(np.float64), max(1, int(rng.integers(2, 7) * scale)))
        prio += rng.uniform(1.0, 3.0) * np.minimum(1.0, band * 6.0)
    if rgb is not None and ("dark" in cfg.kinds or "specular" in cfg.kinds):
        lum = box_mean(luminance(rgb), max(1, int(2 * scale)))
        if lum.shape != (h, w):
            raise ValueError(f"rgb {lum.shape} and depth {(h, w)} differ in size")
        if "dark" in cfg.kinds:
            lo = np.percentile(lum[valid], rng.uniform(8, 25)) if n_valid else 0.0
            prio += rng.uniform(0.8, 2.0) * np.clip((lo - lum) / max(lo, 1e-3) * 3.0 + 0.3, 0, 1) * (lum < lo)
        if "specular" in cfg.kinds:
            hi = np.percentile(lum[valid], rng.uniform(95, 99.5)) if n_valid else 1.0
            spec = dilate(lum >= hi, max(1, int(rng.integers(1, 5) * scale)))
            prio += rng.uniform(0.8, 2.0) * spec
    # a little per-pixel jitter so ties break randomly but holes stay coherent
    prio += 0.05 * smooth_noise((h, w), rng, 4.0 * scale)
    vals = prio[valid]
    thr = np.partition(vals, n_valid - n_hide)[n_valid - n_hide]
    hide = valid & (prio >= thr)
    # exact count: drop the surplus of ties deterministically
    surplus = int(hide.sum()) - n_hide
    if surplus > 0:
        idx = np.flatnonzero(hide & (prio == thr))
        hide.flat[rng.choice(idx, size=min(surplus, idx.size), replace=False)] = False
    return hide
