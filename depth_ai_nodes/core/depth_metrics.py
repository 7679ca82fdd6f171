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
