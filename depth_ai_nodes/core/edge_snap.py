"""Completed depth kept off depth edges: no pixel left in mid-air between two surfaces.

A filler that is unsure which side of a depth edge a hidden pixel belongs to hedges between
the two (that is what minimises squared error). The pixel then lies on neither surface: a
"flying pixel", which a robot sees as an obstacle that does not exist, worse than either side.
Rule, per filled pixel (no measured depth there): when the window around it holds measured
depth of both sides of an edge (farthest > (1 + edge_span) x nearest) and the fill lies more
than `tolerance` from both, it takes the depth of the side whose measured pixels come closest
to it in the image (the sides split at the geometric mean of the two depths); where both are
equally close, the side the fill is nearer to in log depth. A hidden pixel belongs to the
surface beside it more often than the fill's hedge says: on the held-out rgbd-train frames this
choice gave 0.4-2.7 % lower RMSE than following the fill, on three sets of masks; against no snap
at all it is about neutral in RMSE and cuts MAE and flying fills (bench/RESULTS.md). Measured pixels are
never changed, and pixels deeper inside a hole than half the window keep their fill.
The defaults follow issue #10's flying-pixel definition (20 % span, 10 % tolerance). ROS-free,
numba.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .edge_snap_rule import DEFAULT_WINDOW, EDGE_SPAN, TOLERANCE, check_window

__all__ = ["DEFAULT_WINDOW", "EDGE_SPAN", "SIDES", "TOLERANCE", "check_window", "snap_to_edges"]


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


@njit(cache=True, nogil=True, inline="always")
def _side_distance(depth: np.ndarray, yy: int, xx: int, d2: int, nf: np.float32, d_near: int,
                   d_far: int) -> tuple:
    """(d_near, d_far) updated with the pixel (yy, xx) at squared distance d2, when measured:
    a depth below the split (v^2 < n f: the geometric mean of the two sides) is the near side."""
    h, w = depth.shape
    if yy >= 0 and yy < h and xx >= 0 and xx < w:
        v = depth[yy, xx]
        measured = (v > 0) & (v < np.float32(np.inf))
        near = v * v < nf
        # selects, not branches: on noisy depth which side a neighbour is on is unpredictable
        d_near = min(d_near, d2 if measured & near else d_near)
        d_far = min(d_far, d2 if measured & (not near) else d_far)
    return d_near, d_far


@njit(cache=True, nogil=True, inline="always")
def _closer_side(depth: np.ndarray, y: int, x: int, r: int, n: np.float32, f: np.float32,
                 p: np.float32) -> np.float32:
    """The depth of the side (n: nearest, f: farthest in the window) whose measured pixels are
    closest to (y, x) in the image (squared distance); a tie: the side nearer to the fill p in
    log depth. The window is read in square rings from the centre outwards, and the reading
    stops once no farther ring can come as close as the closest side found: usually after the
    first ring, as the snapped pixels mostly sit beside measured ones."""
    nf = n * f
    big = 1 << 30
    d_near = d_far = big
    for k in range(1, r + 1):
        if k * k > min(d_near, d_far):
            break
        for dx in range(-k, k + 1):  # the ring's top and bottom rows
            d2 = k * k + dx * dx
            d_near, d_far = _side_distance(depth, y - k, x + dx, d2, nf, d_near, d_far)
            d_near, d_far = _side_distance(depth, y + k, x + dx, d2, nf, d_near, d_far)
        for dy in range(-k + 1, k):  # and its two sides
            d2 = k * k + dy * dy
            d_near, d_far = _side_distance(depth, y + dy, x - k, d2, nf, d_near, d_far)
            d_near, d_far = _side_distance(depth, y + dy, x + k, d2, nf, d_near, d_far)
    if d_near != d_far:
        return n if d_near < d_far else f
    return n if p * p <= nf else f


@njit(cache=True, nogil=True)
def _snap_kernel(pred: np.ndarray, depth: np.ndarray, r: int, span: float, tol: float, closer: bool,
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
                out[y, x] = n if p * p <= n * f else f  # the side nearer in log depth, for now
                snapped[y, x] = True
                moved += 1
        # the few moved pixels take the side measured closest to them: a second, scalar pass, so
        # that the loop above stays branch-free and vectorized
        if closer:
            for x in range(w):
                if snapped[y, x]:
                    out[y, x] = _closer_side(depth, y, x, r, near[x], far[x], pred[y, x])
    return moved


SIDES = ("closer", "lean")


def snap_to_edges(pred: np.ndarray, depth_in: np.ndarray, window: int = DEFAULT_WINDOW,
                  edge_span: float = EDGE_SPAN, tolerance: float = TOLERANCE,
                  side: str = "closer") -> tuple[np.ndarray, np.ndarray]:
    """(depth, snapped): `pred` (H, W) metres with its flying fills moved to a side (the rule above),
    and the mask of the pixels moved. `depth_in`: the measured depth the fill started from
    (0 / NaN where none). window 0: nothing changes. side "lean": the side the fill is nearer
    to in log depth (the rule before 2026-12-07 evening, kept for bench/bench_edge_snap.py)."""
    if side not in SIDES:
        raise ValueError(f"edge snap side must be one of {SIDES}; got {side!r}")
    p = np.ascontiguousarray(pred, dtype=np.float32)
    if p.ndim != 2 or p.shape != np.shape(depth_in):
        raise ValueError(f"prediction {p.shape} and input depth {np.shape(depth_in)} must be the same (H, W)")
    if check_window(window) == 0:
        return p, np.zeros(p.shape, bool)
    d = np.ascontiguousarray(depth_in, dtype=np.float32)
    out, snapped = np.empty_like(p), np.empty(p.shape, np.bool_)
    _snap_kernel(p, d, window // 2, float(edge_span), float(tolerance), side == "closer", out, snapped,
                 np.empty_like(d), np.empty_like(d))
    return out, snapped
