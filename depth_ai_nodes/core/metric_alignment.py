"""Robust scale + shift alignment of a relative depth prediction to metric references.

Relative models are right up to an affine map in their own space: relative depth
d = s * p + t, or, for disparity-like outputs (MiDaS, Depth Anything), inverse depth
1/d = s * p + t. We fit (s, t) per frame against whatever metric depth exists
(the sensor's valid pixels, or sparse LiDAR depth): RANSAC on pairs finds the
inliers, then Huber IRLS refines on them. Few references lower the confidence, and
a temporal filter smooths the fit so the output does not flicker. ROS-free.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

SPACES = ("depth", "inverse_depth")


@dataclass(frozen=True)
class AlignmentResult:
    """scale/shift in the fit space; residual = median |relative depth error| on
    inliers; confidence 0..1; ok False when no usable fit exists yet."""

    scale: float = 1.0
    shift: float = 0.0
    residual: float = float("nan")
    references: int = 0
    inliers: int = 0
    confidence: float = 0.0
    ok: bool = False
    reason: str = ""
    wrong_sign: bool = False         # the prediction falls where the reference rises


@dataclass
class AlignmentConfig:
    space: str = "inverse_depth"
    min_references: int = 30         # below this: no new fit (keep the last, lower confidence)
    good_references: int = 500       # this many give full confidence from the count
    max_references: int = 4000       # subsample above this (speed; seeded)
    ransac_iterations: int = 64
    inlier_threshold: float = 0.05   # relative depth error counted as inlier
    huber_delta: float = 1.345       # in units of the robust residual scale
    irls_iterations: int = 8
    smoothing: float = 0.3           # EMA weight of the new fit (1 = no smoothing)
    decay: float = 0.7               # confidence multiplier per frame while reusing a fit
    min_depth_m: float = 0.05
    max_depth_m: float = 100.0
    seed: int = 0


def _to_depth(v: np.ndarray, space: str) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 / v if space == "inverse_depth" else v


def _weighted_fit(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    sw = w.sum()
    if sw <= 0:
        return float("nan"), float("nan")
    mp, my = (w * p).sum() / sw, (w * y).sum() / sw
    var = (w * (p - mp) ** 2).sum()
    if var <= 1e-20:
        return 0.0, float(my)
    s = (w * (p - mp) * (y - my)).sum() / var
    return float(s), float(my - s * mp)


class MetricAligner:
    """Per-frame robust fit plus temporal smoothing; `update` is the node's entry point."""

    def __init__(self, config: AlignmentConfig | None = None) -> None:
        self.config = config or AlignmentConfig()
        if self.config.space not in SPACES:
            raise ValueError(f"alignment space {self.config.space!r}; use one of {SPACES}")
        self._rng = np.random.default_rng(self.config.seed)
        self.state = AlignmentResult()

    def reset(self) -> None:
        self.state = AlignmentResult()

    def fit(self, pred: np.ndarray, ref_depth: np.ndarray) -> AlignmentResult:
        """One frame's fit of pred (relative) to ref_depth (metres, 0/NaN invalid)."""
        c = self.config
        p = np.asarray(pred, dtype=np.float64).ravel()
        r = np.asarray(ref_depth, dtype=np.float64).ravel()
        valid = np.isfinite(p) & np.isfinite(r) & (r > c.min_depth_m) & (r < c.max_depth_m)
        idx = np.flatnonzero(valid)
        n = idx.size
        if n < c.min_references:
            return AlignmentResult(references=n, reason=f"{n} reference points (< {c.min_references})")
        if n > c.max_references:
            idx = self._rng.choice(idx, c.max_references, replace=False)
        p, r = p[idx], r[idx]
        y = 1.0 / r if c.space == "inverse_depth" else r
        # RANSAC over pairs: the hypothesis with most inliers (relative depth error)
        best, best_count = (float("nan"), float("nan")), -1
        m = p.size
        pairs = self._rng.integers(0, m, size=(c.ransac_iterations, 2))
        for i, j in pairs:
            dp = p[i] - p[j]
            if abs(dp) < 1e-12:
                continue
            s = (y[i] - y[j]) / dp
            t = y[i] - s * p[i]
            d = _to_depth(s * p + t, c.space)
            ok = (d > 0) & (np.abs(d - r) < c.inlier_threshold * r)
            cnt = int(ok.sum())
            if cnt > best_count:
                best, best_count = (s, t), cnt
        if best_count < 2:
            s, t = _weighted_fit(p, y, np.ones_like(p))
        else:
            s, t = best
        # Huber IRLS on the fit-space residual, seeded by the RANSAC inliers
        d = _to_depth(s * p + t, c.space)
        w = ((d > 0) & (np.abs(d - r) < 3 * c.inlier_threshold * r)).astype(np.float64)
        if w.sum() < 2:
            w = np.ones_like(p)
        for _ in range(c.irls_iterations):
            s, t = _weighted_fit(p, y, w)
            if not np.isfinite(s):
                break
            res = y - (s * p + t)
            sigma = 1.4826 * np.median(np.abs(res[w > 0])) + 1e-12
            u = np.abs(res) / (c.huber_delta * sigma)
            w = np.where(u <= 1.0, 1.0, 1.0 / np.maximum(u, 1e-12))
            w[u > 4.0] = 0.0  # gross outliers out entirely
        d = _to_depth(s * p + t, c.space)
        rel = np.abs(d - r) / r
        inl = (d > 0) & (rel < c.inlier_threshold)
        if np.isfinite(s) and s < 0 and inl.sum() >= max(2, 0.5 * n if n < 100 else 0.3 * len(p)):
            # a consistent fit, but inverted: the output grows the other way than its kind says
            return AlignmentResult(references=n, wrong_sign=True,
                                   reason=f"the fit has negative scale {s:.3g} with {int(inl.sum())} "
                                   f"inliers: the prediction falls where the reference depth rises")
        if not np.isfinite(s) or s <= 0:  # a relative model's output never inverts the order
            return AlignmentResult(references=n, reason=f"fit has non-positive scale {s:.3g} (no "
                                   f"consistent relation between prediction and references)")
        if inl.sum() < 2:
            return AlignmentResult(references=n, reason="no consistent scale/shift (all outliers)")
        residual = float(np.median(rel[inl]))
        frac = inl.mean()
        conf = min(1.0, n / c.good_references) * frac * float(np.exp(-residual / 0.05))
        return AlignmentResult(float(s), float(t), residual, n, int(inl.sum()), float(conf), True)

    def update(self, pred: np.ndarray, ref_depth: np.ndarray | None) -> AlignmentResult:
        """Fit this frame, blend with the previous fit, return what to apply now."""
        c = self.config
        new = self.fit(pred, ref_depth) if ref_depth is not None else AlignmentResult(reason="no reference depth")
        prev = self.state
        if not new.ok:
            if prev.ok:  # keep the last fit, trust it less each frame
                self.state = replace(prev, confidence=prev.confidence * c.decay, references=new.references,
                                     inliers=0, reason=new.reason)
            else:
                self.state = new
            return self.state
        if not prev.ok:
            self.state = new
            return new
        a = c.smoothing
        self.state = replace(new, scale=(1 - a) * prev.scale + a * new.scale,
                             shift=(1 - a) * prev.shift + a * new.shift)
        return self.state

    def apply(self, pred: np.ndarray, result: AlignmentResult) -> np.ndarray:
        """Metric depth (float32 metres) from pred and a fit; NaN where not positive/finite."""
        v = result.scale * np.asarray(pred, dtype=np.float32) + np.float32(result.shift)
        d = _to_depth(v, self.config.space).astype(np.float32)
        d[~np.isfinite(d) | (d <= 0)] = np.nan
        return d
