"""Standard depth accuracy metrics (Eigen et al.): AbsRel, RMSE, MAE, delta < 1.25. ROS-free."""
from __future__ import annotations

import numpy as np

METRICS = ("abs_rel", "rmse", "mae", "delta1")


def depth_metrics(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """Metrics over pixels where gt > 0 and finite (and mask, if given).

    A prediction that is NaN/invalid on such a pixel counts as a miss: it is
    scored as 0 m for the error terms (so holes cost, instead of being skipped)."""
    g = np.asarray(gt, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} differ in shape")
    sel = np.isfinite(g) & (g > 0)
    if mask is not None:
        sel &= np.asarray(mask, dtype=bool)
    n = int(sel.sum())
    if n == 0:
        return {"abs_rel": float("nan"), "rmse": float("nan"), "mae": float("nan"),
                "delta1": float("nan"), "n": 0, "missing": 0}
    g, p = g[sel], p[sel]
    missing = ~np.isfinite(p) | (p <= 0)
    p = np.where(missing, 0.0, p)
    err = p - g
    with np.errstate(divide="ignore"):
        ratio = np.where(missing, np.inf, np.maximum(p / g, g / np.maximum(p, 1e-12)))
    return {"abs_rel": float(np.mean(np.abs(err) / g)), "rmse": float(np.sqrt(np.mean(err ** 2))),
            "mae": float(np.mean(np.abs(err))), "delta1": float(np.mean(ratio < 1.25)),
            "n": n, "missing": int(missing.sum())}


def _window_extremes(gt: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest and farthest valid true depth in each (2r+1)^2 window (invalid: +inf / -inf)."""
    g = np.asarray(gt, dtype=np.float64)
    valid = np.isfinite(g) & (g > 0)
    lo = np.where(valid, g, np.inf)
    hi = np.where(valid, g, -np.inf)
    pad_lo = np.pad(lo, r, mode="constant", constant_values=np.inf)
    pad_hi = np.pad(hi, r, mode="constant", constant_values=-np.inf)
    h, w = g.shape
    near = np.full((h, w), np.inf)
    far = np.full((h, w), -np.inf)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            near = np.minimum(near, pad_lo[dy:dy + h, dx:dx + w])
            far = np.maximum(far, pad_hi[dy:dy + h, dx:dx + w])
    return near, far


def flying_pixels(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, window: int = 7,
                  edge_span: float = 0.2, tolerance: float = 0.1) -> tuple[int, int]:
    """(flying, near-edge) counts among the filled pixels `mask` (issue #10's definition).

    Near a depth edge: the window x window of true depth spans more than `edge_span`
    (farthest / nearest - 1). Flying: the prediction lies between the window's nearest and
    farthest true depth and more than `tolerance` (relative) away from both: a pixel that
    belongs to neither surface, which is worse than either side."""
    near, far = _window_extremes(gt, window // 2)
    p = np.asarray(pred, dtype=np.float64)
    sel = np.asarray(mask, bool) & np.isfinite(near) & np.isfinite(far) & (near > 0)
    sel &= far > (1.0 + edge_span) * near
    ps, n, f = p[sel], near[sel], far[sel]
    flying = np.isfinite(ps) & (ps > n * (1 + tolerance)) & (ps < f * (1 - tolerance))
    return int(flying.sum()), int(sel.sum())


def confidence_separation(err: np.ndarray, conf: np.ndarray, share: float = 0.2) -> float:
    """Mean |error| of the `share` least-confident pixels over that of the `share` most-
    confident ones (>= 2 means the confidence ranks errors usefully); NaN when too few."""
    e, c = np.asarray(err, np.float64).ravel(), np.asarray(conf, np.float64).ravel()
    ok = np.isfinite(e) & np.isfinite(c)
    e, c = e[ok], c[ok]
    k = int(share * e.size)
    if k < 10:
        return float("nan")
    order = np.argsort(c, kind="stable")
    low, high = e[order[:k]].mean(), e[order[-k:]].mean()
    return float(low / high) if high > 0 else float("inf")
