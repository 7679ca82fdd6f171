"""Completed depth kept off depth edges: no pixel left in mid-air between two surfaces.

A filler that is unsure which side of a depth edge a hidden pixel belongs to hedges between
the two (that is what minimises squared error). The pixel then lies on neither surface: a
"flying pixel", which a robot sees as an obstacle that does not exist, worse than either side.
Rule, per filled pixel (no measured depth there): when the window around it holds measured
depth of both sides of an edge (farthest > (1 + edge_span) x nearest) and the fill lies more
than `tolerance` from both, it takes the side it is closer to in log depth. Measured pixels are
never changed, and pixels deeper inside a hole than half the window keep their fill.
The defaults follow issue #10's flying-pixel definition (20 % span, 10 % tolerance). ROS-free,
numba.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .edge_snap_rule import DEFAULT_WINDOW, EDGE_SPAN, TOLERANCE, check_window

__all__ = ["DEFAULT_WINDOW", "EDGE_SPAN", "TOLERANCE", "check_window", "snap_to_edges"]


@njit(cache=True, nogil=True)
def _extremes_rows(depth: np.ndarray, r: int, lo: np.ndarray, hi: np.ndarray) -> None:
    """Per row, the window minimum / maximum of the measured depth (> 0, finite) over 2r+1
    columns (+inf / 0: none): shifted passes over a padded copy of the row (they vectorize)."""
    h, w = depth.shape
    inf = np.float32(np.inf)
    src_lo = np.full(w + 2 * r, inf, np.float32)
    src_hi = np.zeros(w + 2 * r, np.float32)
    for y in range(h):
        for x in range(w):
            v = depth[y, x]
            ok = (v > 0) & (v < inf)  # NaN fails both
            src_lo[x + r] = v if ok else inf
            src_hi[x + r] = v if ok else np.float32(0.0)
        a, b = lo[y], hi[y]
        for x in range(w):
            a[x] = src_lo[x]
            b[x] = src_hi[x]
        for k in range(1, 2 * r + 1):
            for x in range(w):
                a[x] = min(a[x], src_lo[x + k])
                b[x] = max(b[x], src_hi[x + k])


@njit(cache=True, nogil=True)
def _snap_kernel(pred: np.ndarray, depth: np.ndarray, r: int, span: float, tol: float,
                 out: np.ndarray, snapped: np.ndarray, row_lo: np.ndarray, row_hi: np.ndarray) -> int:
    """snap_to_edges' rule over the image: the row extremes, then per output row the column
    extremes of 2r+1 rows and the decision. Returns the number of pixels moved."""
    h, w = depth.shape
    _extremes_rows(depth, r, row_lo, row_hi)
    near = np.empty(w, np.float32)
    far = np.empty(w, np.float32)
    inf = np.float32(np.inf)
    grow, low, high = np.float32(1.0 + span), np.float32(1.0 + tol), np.float32(1.0 - tol)
    moved = 0
    for y in range(h):
        a, b = max(y - r, 0), min(y + r + 1, h)
        near[:] = row_lo[a]
        far[:] = row_hi[a]
        for k in range(a + 1, b):
            lo, hi = row_lo[k], row_hi[k]
            for x in range(w):
                near[x] = min(near[x], lo[x])
                far[x] = max(far[x], hi[x])
        for x in range(w):
            p = pred[y, x]
            out[y, x] = p
            snapped[y, x] = False
            v = depth[y, x]
            if (v > 0) & (v < inf):  # measured: never changed
                continue
            n, f = near[x], far[x]
            if f > grow * n and p > n * low and p < f * high:  # both sides in view, the fill on neither
                out[y, x] = n if p * p <= n * f else f  # the nearer side in log depth
                snapped[y, x] = True
                moved += 1
    return moved


def snap_to_edges(pred: np.ndarray, depth_in: np.ndarray, window: int = DEFAULT_WINDOW,
                  edge_span: float = EDGE_SPAN, tolerance: float = TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """(depth, snapped): `pred` (H, W) metres with its flying fills moved to the nearer side,
    and the mask of the pixels moved. `depth_in`: the measured depth the fill started from
    (0 / NaN where none). window 0: nothing changes."""
    p = np.ascontiguousarray(pred, dtype=np.float32)
    if p.ndim != 2 or p.shape != np.shape(depth_in):
        raise ValueError(f"prediction {p.shape} and input depth {np.shape(depth_in)} must be the same (H, W)")
    if check_window(window) == 0:
        return p, np.zeros(p.shape, bool)
    d = np.ascontiguousarray(depth_in, dtype=np.float32)
    out, snapped = np.empty_like(p), np.empty(p.shape, np.bool_)
    _snap_kernel(p, d, window // 2, float(edge_span), float(tolerance), out, snapped, np.empty_like(d),
                 np.empty_like(d))
    return out, snapped
