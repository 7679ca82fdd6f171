"""LiDAR points -> a camera: transform, distortion, field-of-view culling, occlusion, and
the camera values (IR, colour, depth) each visible point sees. ROS-free, numba kernels.

The rules, each also a plain step of its own (`project`, `visibility`, `sample_*`: the
reference the tests hold `Projector.fuse` to, bit for bit):
1. `project`: p_cam = T @ p_lidar; pinhole + distortion (plumb_bob / rational_polynomial,
   the same formulas as CameraModel.project incl.
   equidistant, checked against it in the tests) in one
   kernel; culls points behind the camera, outside [min_depth, max_depth], outside the
   distortion model's monotonic radius (where the polynomial folds back and far-off
   points would land in the image) and outside the image. Pixel convention: ROS, pixel
   (u, v) is centred at integer u, v, so a point belongs to pixel (floor(u+.5), floor(v+.5)).
2. `visibility` (z-buffer occlusion). LiDAR points are sparse: a near point covers only
   its own pixel, so a far point a few pixels away "sees through" the gap. Rule: every
   in-view point splats its depth into a (2r+1)^2 pixel footprint (r = splat_px) of a
   min-depth buffer; a point is occluded when that buffer at its own pixel holds a
   depth nearer than z - max(abs_tol, rel_tol * z). With r >= half the beam spacing in
   pixels the foreground closes its gaps; background points within r px of a foreground
   edge are dropped (conservative: they get no camera value rather than a wrong one).
3. `sample_*`: the camera value at the point's pixel (nearest pixel centre) for visible
   points, NaN otherwise; colour is packed as PCL's float rgb.
4. `pack_rows`: the fused cloud's float32 fields, interleaved.

`Projector.fuse` runs all of it per cloud in four kernels (pack; project; z-buffer; occlusion
+ lookups), writing the rows where the caller says (the outgoing message's buffer), on one
thread or two.
"""
from __future__ import annotations

import sys
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
from numba import njit

_JIT = dict(cache=True, nogil=True, fastmath=False)

COARSE_SHIFT = 2  # occlusion pre-check on 4x4-pixel blocks
PARALLEL_MIN_POINTS = 40_000  # below this the second thread's two hand-offs (~0.1 ms) cost more than they save
DIST_NONE, DIST_PLUMB_BOB, DIST_RATIONAL, DIST_EQUIDISTANT = 0, 1, 2, 3
_MODELS = {"": DIST_NONE, "none": DIST_NONE, "plumb_bob": DIST_PLUMB_BOB,
           "radtan": DIST_PLUMB_BOB, "rational_polynomial": DIST_RATIONAL,
           "equidistant": DIST_EQUIDISTANT, "fisheye": DIST_EQUIDISTANT}


@dataclass
class Intrinsics:
    """Pinhole + distortion in the kernels' form; build from a CameraModel or K/D."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    dist: np.ndarray          # k1 k2 p1 p2 k3 k4 k5 k6 (zeros where absent)
    model: int = DIST_NONE
    r2_max: float = np.inf    # squared normalised radius where the distortion stays monotonic

    @classmethod
    def from_k(cls, K: np.ndarray, width: int, height: int, D: np.ndarray | None = None,
               distortion_model: str = "plumb_bob") -> "Intrinsics":
        k = np.asarray(K, dtype=np.float64).reshape(3, 3)
        d = np.zeros(8)
        dd = np.asarray([] if D is None else D, dtype=np.float64).reshape(-1)[:8]
        d[:dd.size] = dd
        name = (distortion_model or "").strip().lower()
        if name not in _MODELS:
            raise ValueError(f"distortion model {distortion_model!r} is not supported; use "
                             "plumb_bob or rational_polynomial")
        model = _MODELS[name] if np.any(d) else DIST_NONE
        intr = cls(int(width), int(height), float(k[0, 0]), float(k[1, 1]), float(k[0, 2]),
                   float(k[1, 2]), d, model)
        intr.r2_max = _monotonic_r2(d, model)
        return intr

    @classmethod
    def from_camera_model(cls, cm: object) -> "Intrinsics":
        """From core CameraModel (width, height, K, D, distortion_model)."""
        return cls.from_k(np.asarray(cm.K), cm.width, cm.height, np.asarray(cm.D),
                          getattr(cm, "distortion_model", "plumb_bob"))

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])


def _monotonic_r2(d: np.ndarray, model: int) -> float:
    """Largest r^2 (normalised) up to which the radial distortion r*f(r^2) still grows."""
    if model == DIST_NONE:
        return np.inf
    if model == DIST_EQUIDISTANT:  # theta(r) = atan(r) is monotonic; check the polynomial
        th = np.linspace(1e-3, np.pi / 2 - 1e-3, 4000)
        t2 = th * th
        thd = th * (1 + t2 * (d[0] + t2 * (d[1] + t2 * (d[2] + t2 * d[3]))))
        bad = np.nonzero(np.diff(thd) <= 0)[0]
        return float(np.tan(th[bad[0]]) ** 2) if bad.size else np.inf
    r = np.linspace(1e-3, 4.0, 4000)
    r2 = r * r
    num = 1 + d[0] * r2 + d[1] * r2 ** 2 + d[4] * r2 ** 3
    den = 1 + d[5] * r2 + d[6] * r2 ** 2 + d[7] * r2 ** 3 if model == DIST_RATIONAL else 1.0
    rd = r * num / den
    bad = np.nonzero((np.diff(rd) <= 0) | (np.asarray(den)[1:] <= 0 if model == DIST_RATIONAL
                                           else np.zeros(r.size - 1, bool)))[0]
    return float(r2[bad[0]]) if bad.size else np.inf


@njit(inline="always", **_JIT)
def _distort(a, b, d, model):
    r2 = a * a + b * b
    if model == DIST_EQUIDISTANT:  # k1..k4 in d[0..3]
        r = np.sqrt(r2)
        if r < 1e-12:
            return a, b
        th = np.arctan(r)
        t2 = th * th
        s = th * (1.0 + t2 * (d[0] + t2 * (d[1] + t2 * (d[2] + t2 * d[3])))) / r
        return a * s, b * s
    radial = 1.0 + r2 * (d[0] + r2 * (d[1] + r2 * d[4]))
    if model == DIST_RATIONAL:
        radial /= 1.0 + r2 * (d[5] + r2 * (d[6] + r2 * d[7]))
    ad = a * radial + 2.0 * d[2] * a * b + d[3] * (r2 + 2.0 * a * a)
    bd = b * radial + d[2] * (r2 + 2.0 * b * b) + 2.0 * d[3] * a * b
    return ad, bd


@njit(inline="always", **_JIT)
def _project_one(px, py, pz, r00, r01, r02, t0, r10, r11, r12, t1, r20, r21, r22, t2,
                 fx, fy, cx, cy, d, model, r2max, w, h, zmin, zmax):
    """(Z, u, v, flat pixel or -1) of one point; u = v = NaN when culled before the image test.
    The matrix comes as scalars: loaded once per cloud, not per point (the output arrays
    could alias it as far as LLVM knows)."""
    Z = r20 * px + r21 * py + r22 * pz + t2
    if not (Z >= zmin and Z <= zmax):  # also rejects NaN
        return Z, np.nan, np.nan, -1
    a = (r00 * px + r01 * py + r02 * pz + t0) / Z
    b = (r10 * px + r11 * py + r12 * pz + t1) / Z
    if model != 0:
        if a * a + b * b > r2max:
            return Z, np.nan, np.nan, -1
        a, b = _distort(a, b, d, model)
    uu = fx * a + cx
    vv = fy * b + cy
    if uu >= -0.5 and vv >= -0.5 and uu < w - 0.5 and vv < h - 0.5:
        return Z, uu, vv, int(vv + 0.5) * w + int(uu + 0.5)  # >= 0 here: truncation is floor
    return Z, uu, vv, -1


@njit(**_JIT)
def _project_kernel(x, y, z, m, fx, fy, cx, cy, d, model, r2max, w, h, zmin, zmax, u, v, depth, pix, idx):
    inview = 0
    r00, r01, r02, t0 = m[0, 0], m[0, 1], m[0, 2], m[0, 3]
    r10, r11, r12, t1 = m[1, 0], m[1, 1], m[1, 2], m[1, 3]
    r20, r21, r22, t2 = m[2, 0], m[2, 1], m[2, 2], m[2, 3]
    for i in range(x.shape[0]):
        Z, uu, vv, p = _project_one(x[i], y[i], z[i], r00, r01, r02, t0, r10, r11, r12, t1, r20, r21, r22, t2,
                                    fx, fy, cx, cy, d, model, r2max, w, h, zmin, zmax)
        depth[i] = Z
        u[i] = uu
        v[i] = vv
        pix[i] = p
        if p >= 0:
            idx[inview] = i
            inview += 1
    return inview


@njit(**_JIT)
def _pack_kernel(x, y, z, intensity, out):
    """The rows' LiDAR part: x y z intensity, every camera field NaN until the lookup fills it
    (any layout; _pack_pairs is the fast path)."""
    ncol = out.shape[1]
    nan = np.float32(np.nan)
    for i in range(x.shape[0]):
        out[i, 0] = x[i]
        out[i, 1] = y[i]
        out[i, 2] = z[i]
        out[i, 3] = intensity[i]
        for c in range(4, ncol):
            out[i, c] = nan


_NAN_BITS = 0x7FC00000  # float32 quiet NaN


@njit(inline="always", error_model="numpy", **_JIT)
def _pack_pairs(xb, yb, zb, ib, o, F):
    """_pack_kernel as 8-byte stores of two floats (little-endian: the first float is the low
    half), half the stores and vectorized: 2-3x faster. xb..ib are the float32 columns' bits,
    o the rows as uint64; `F` (columns, 5..8) must be a constant. An odd F packs two rows
    (F uint64) per step; o then holds an even number of rows."""
    s = np.uint64(32)
    nan2 = np.uint64(_NAN_BITS) | (np.uint64(_NAN_BITS) << s)
    if F % 2 == 0:
        h = F // 2
        for i in range(xb.shape[0]):
            b = i * h
            o[b] = np.uint64(xb[i]) | (np.uint64(yb[i]) << s)
            o[b + 1] = np.uint64(zb[i]) | (np.uint64(ib[i]) << s)
            for k in range(2, h):
                o[b + k] = nan2
    else:
        for j in range(o.shape[0] // F):
            b = j * F
            a, c = 2 * j, 2 * j + 1
            o[b] = np.uint64(xb[a]) | (np.uint64(yb[a]) << s)
            o[b + 1] = np.uint64(zb[a]) | (np.uint64(ib[a]) << s)
            for k in range(2, (F - 1) // 2):
                o[b + k] = nan2
            o[b + (F - 1) // 2] = np.uint64(_NAN_BITS) | (np.uint64(xb[c]) << s)
            o[b + (F + 1) // 2] = np.uint64(yb[c]) | (np.uint64(zb[c]) << s)
            o[b + (F + 3) // 2] = np.uint64(ib[c]) | (np.uint64(_NAN_BITS) << s)
            for k in range((F + 5) // 2, F):
                o[b + k] = nan2


@njit(error_model="numpy", **_JIT)
def _pack_pairs_kernel(xb, yb, zb, ib, o, F):
    """_pack_pairs with the column count turned into a constant."""
    if F == 5:
        _pack_pairs(xb, yb, zb, ib, o, 5)
    elif F == 6:
        _pack_pairs(xb, yb, zb, ib, o, 6)
    elif F == 7:
        _pack_pairs(xb, yb, zb, ib, o, 7)
    else:
        _pack_pairs(xb, yb, zb, ib, o, 8)


def pack_rows(x: np.ndarray, y: np.ndarray, z: np.ndarray, intensity: np.ndarray, out: np.ndarray) -> None:
    """x y z intensity into the first four columns of (N, F) float32 rows, every other column
    NaN: what a point gets before (or without) any camera value. The pair-store kernel where the
    layout allows it (contiguous rows of 5..8 float32 columns, little-endian), else the plain one."""
    n, F = out.shape
    cols = (x, y, z, intensity)
    if (5 <= F <= 8 and out.flags.c_contiguous and sys.byteorder == "little"
            and all(c.dtype == np.float32 for c in cols) and out.ctypes.data % 8 == 0):
        m = n - (n & 1) if F % 2 else n  # an odd layout packs rows two by two
        xb, yb, zb, ib = (c.view(np.uint32) for c in cols)
        _pack_pairs_kernel(xb[:m], yb[:m], zb[:m], ib[:m], out.reshape(-1)[: m * F].view(np.uint64), F)
        if m < n:
            _pack_kernel(x[m:], y[m:], z[m:], intensity[m:], out[m:])
    else:
        _pack_kernel(x, y, z, intensity, out)


@njit(inline="always", error_model="numpy", **_JIT)
def _project_uv(x, y, z, m, fx, fy, cx, cy, d, model, r2max, w, h, zmin, zmax, depth, uv):
    """Every point's camera depth and pixel, packed as (row << 16) | column, -1 when culled
    (the rules of _project_one). `model` must be a constant here: without distortion the loop
    is branch-free and vectorizes (4x faster); the distortion models run the scalar rule."""
    r00, r01, r02, t0 = m[0, 0], m[0, 1], m[0, 2], m[0, 3]
    r10, r11, r12, t1 = m[1, 0], m[1, 1], m[1, 2], m[1, 3]
    r20, r21, r22, t2 = m[2, 0], m[2, 1], m[2, 2], m[2, 3]
    wlim, hlim = w - 0.5, h - 0.5
    one = np.int32(1)
    for i in range(x.shape[0]):
        px, py, pz = x[i], y[i], z[i]
        Z = r20 * px + r21 * py + r22 * pz + t2
        depth[i] = Z
        if model == DIST_NONE:
            inv = 1.0 / Z
            uu = fx * ((r00 * px + r01 * py + r02 * pz + t0) * inv) + cx
            vv = fy * ((r10 * px + r11 * py + r12 * pz + t1) * inv) + cy
            ok = np.int32((Z >= zmin) & (Z <= zmax) & (uu >= -0.5) & (vv >= -0.5) & (uu < wlim) & (vv < hlim))
            # clamped before the int conversion (NaN -> 0), selected arithmetically: no branch
            us = uu + 0.5
            vs = vv + 0.5
            us = us if us > 0.0 else 0.0
            vs = vs if vs > 0.0 else 0.0
            us = us if us < wlim else wlim
            vs = vs if vs < hlim else hlim
            uv[i] = ((np.int32(vs) << 16) | np.int32(us)) * ok + (ok - one)
        else:
            _, uu, vv, p = _project_one(px, py, pz, r00, r01, r02, t0, r10, r11, r12, t1, r20, r21, r22, t2,
                                        fx, fy, cx, cy, d, model, r2max, w, h, zmin, zmax)
            uv[i] = (np.int32(vv + 0.5) << 16) | np.int32(uu + 0.5) if p >= 0 else -one


@njit(error_model="numpy", **_JIT)  # 1 / 0 -> inf (culled), no Python exception check per point
def _project_uv_kernel(x, y, z, m, fx, fy, cx, cy, d, model, r2max, w, h, zmin, zmax, depth, uv):
    """_project_uv with `model` turned into a constant (one compiled loop per model)."""
    if model == DIST_NONE:
        _project_uv(x, y, z, m, fx, fy, cx, cy, d, DIST_NONE, r2max, w, h, zmin, zmax, depth, uv)
    elif model == DIST_PLUMB_BOB:
        _project_uv(x, y, z, m, fx, fy, cx, cy, d, DIST_PLUMB_BOB, r2max, w, h, zmin, zmax, depth, uv)
    elif model == DIST_RATIONAL:
        _project_uv(x, y, z, m, fx, fy, cx, cy, d, DIST_RATIONAL, r2max, w, h, zmin, zmax, depth, uv)
    else:
        _project_uv(x, y, z, m, fx, fy, cx, cy, d, DIST_EQUIDISTANT, r2max, w, h, zmin, zmax, depth, uv)


@njit(**_JIT)
def _zbuffer_kernel(uv, depth, w, r, zw, idx, pix, zbuf, coarse, cw):
    """The in-view points (idx, in cloud order) with their flat pixel (pix), and the nearest
    depth per pixel (zbuf) and per 2^COARSE_SHIFT block (coarse). zbuf has a border of r
    pixels (+inf) on every side, zw pixels a row: the occlusion window never needs clipping.
    Returns how many points are in view."""
    inview = 0
    for i in range(uv.shape[0]):
        q = uv[i]
        if q < 0:
            continue
        iv = q >> 16
        iu = q & 0xFFFF
        pix[i] = iv * w + iu
        idx[inview] = i
        inview += 1
        Z = depth[i]
        zv = iv + r
        zu = iu + r
        p = zv * zw + zu
        if Z < zbuf[p]:
            zbuf[p] = Z
            c = (zv >> COARSE_SHIFT) * cw + (zu >> COARSE_SHIFT)
            if Z < coarse[c]:
                coarse[c] = Z
    return inview


@njit(inline="always", **_JIT)
def _mn(a, b):
    return a if a < b else b


@njit(inline="always", **_JIT)
def _occluded(p, zi, w, h, r, rel_tol, abs_tol, zbuf):
    """The module's occlusion rule for one in-view point, zbuf holding per-pixel minima."""
    tol = rel_tol * zi
    if tol < abs_tol:
        tol = abs_tol
    limit = zi - tol
    iv = p // w
    iu = p - iv * w
    v0 = max(iv - r, 0)
    v1 = min(iv + r, h - 1)
    u0 = max(iu - r, 0)
    u1 = min(iu + r, w - 1)
    for vv in range(v0, v1 + 1):
        row = vv * w
        for uu in range(u0, u1 + 1):
            if zbuf[row + uu] < limit:
                return True
    return False


@njit(inline="always", **_JIT)
def _lookup(points, r, grid, cams):
    """Occlusion test + camera lookups for the in-view points idx (any share of them: zbuf is
    only read, each point's row only written, so two threads can split them). The
    occlusion rule of _occluded on the bordered zbuf of _zbuffer_kernel: the window of the
    point at (iv, iu) starts at zbuf row iv, column iu. `r` must be a constant here (the
    window loops unroll). Row and column come from uv: a 64-bit division per point (p // w)
    cost more than the test itself. points: (pix, uv, idx, depth); grid: the z-buffer (zw,
    zbuf, coarse, cw) and the rule (rel_tol, abs_tol); cams: the lookups' images and outputs."""
    pix, uv, idx, depth = points
    zw, zbuf, coarse, cw, rel_tol, abs_tol = grid
    visible, ir, ir_scale, use_ir, rgb, use_rgb, c_rgb, ref, use_ref, c_ref, out, bits = cams
    irf = ir.reshape(-1)
    rgbf = rgb.reshape(rgb.shape[0] * rgb.shape[1], rgb.shape[2])
    reff = ref.reshape(-1)
    n2 = 2 * r + 1
    occluded = 0
    for k in range(idx.shape[0]):
        i = idx[k]
        zi = depth[i]
        tol = rel_tol * zi
        tol = tol if tol > abs_tol else abs_tol
        limit = zi - tol
        q = uv[i]
        iv = q >> 16
        iu = q & 0xFFFF
        # first the coarse cells (minima of 2^COARSE_SHIFT-pixel blocks) covering the window:
        # when even they hold nothing nearer, the point is visible without reading every pixel
        if n2 <= (1 << COARSE_SHIFT) + 1:  # at most 2 x 2 cells: read all four, no branches
            a = (iv >> COARSE_SHIFT) * cw + (iu >> COARSE_SHIFT)
            m = _mn(_mn(coarse[a], coarse[a + 1]), _mn(coarse[a + cw], coarse[a + cw + 1]))
        else:
            m = np.float32(np.inf)
            for cv in range(iv >> COARSE_SHIFT, ((iv + 2 * r) >> COARSE_SHIFT) + 1):
                for cu in range(iu >> COARSE_SHIFT, ((iu + 2 * r) >> COARSE_SHIFT) + 1):
                    m = _mn(m, coarse[cv * cw + cu])
        if m < limit:
            base = iv * zw + iu
            m = np.float32(np.inf)
            for dv in range(n2):  # one independent minimum per row, then across rows
                row = base + dv * zw
                rm = zbuf[row]
                for du in range(1, n2):
                    rm = _mn(rm, zbuf[row + du])
                m = _mn(m, rm)
            if m < limit:
                occluded += 1
                continue
        visible[i] = True
        p = pix[i]
        if use_ir:
            out[i, 4] = irf[p] * ir_scale
        if use_rgb:
            bits[i, c_rgb] = (np.uint32(rgbf[p, 0]) << 16) | (np.uint32(rgbf[p, 1]) << 8) | np.uint32(rgbf[p, 2])
        if use_ref:
            rz = reff[p]
            if rz > 0:  # 0 / NaN: no camera depth there
                out[i, c_ref] = rz - depth[i]
    return occluded


@njit(**_JIT)
def _reset_kernel(uv, idx, r, zw, zbuf, coarse, cw):
    """zbuf and coarse back to +inf where _zbuffer_kernel wrote (not the whole 1-2 MB)."""
    for k in range(idx.shape[0]):
        q = uv[idx[k]]
        zv = (q >> 16) + r
        zu = (q & 0xFFFF) + r
        zbuf[zv * zw + zu] = np.inf
        coarse[(zv >> COARSE_SHIFT) * cw + (zu >> COARSE_SHIFT)] = np.inf


@njit(**_JIT)
def _lookup_kernel(points, r, grid, cams):
    """_lookup with the splat radius turned into a constant for the usual 0..3 (2x faster
    than loops of run-time length), a run-time one beyond."""
    if r == 2:
        return _lookup(points, 2, grid, cams)
    if r == 1:
        return _lookup(points, 1, grid, cams)
    if r == 0:
        return _lookup(points, 0, grid, cams)
    if r == 3:
        return _lookup(points, 3, grid, cams)
    return _lookup(points, r, grid, cams)


@njit(**_JIT)
def _visibility_kernel(pix, depth, idx, w, h, r, rel_tol, abs_tol, zbuf, visible):
    """zbuf: all +inf on entry and on exit (only touched pixels are reset)."""
    for k in range(idx.shape[0]):
        i = idx[k]
        p = pix[i]
        if depth[i] < zbuf[p]:
            zbuf[p] = depth[i]
    occluded = 0
    for k in range(idx.shape[0]):
        i = idx[k]
        if _occluded(pix[i], depth[i], w, h, r, rel_tol, abs_tol, zbuf):
            occluded += 1
        else:
            visible[i] = True
    for k in range(idx.shape[0]):
        zbuf[pix[idx[k]]] = np.inf
    return occluded


@njit(**_JIT)
def _sample_kernel(img, pix, visible, scale, out):
    flat = img.reshape(-1)
    for i in range(pix.shape[0]):
        if visible[i]:
            out[i] = flat[pix[i]] * scale
        else:
            out[i] = np.nan


@njit(**_JIT)
def _sample_rgb_kernel(img, pix, visible, out):
    """PCL float rgb: uint32 0x00RRGGBB viewed as float32; NaN (all bits set) when unseen."""
    npx = img.shape[0] * img.shape[1]
    flat = img.reshape(npx, img.shape[2])
    for i in range(pix.shape[0]):
        if visible[i]:
            p = pix[i]
            out[i] = (np.uint32(flat[p, 0]) << 16) | (np.uint32(flat[p, 1]) << 8) | np.uint32(flat[p, 2])
        else:
            out[i] = np.uint32(0x7FC00000)


@njit(**_JIT)
def _sparse_depth_kernel(pix, depth, visible, img):
    flat = img.reshape(-1)
    for k in range(flat.shape[0]):
        flat[k] = np.nan
    for i in range(pix.shape[0]):
        if visible[i]:
            p = pix[i]
            z = depth[i]
            if not (flat[p] <= z):  # NaN or farther
                flat[p] = z


@dataclass
class Projection:
    """Per-point results of one projection (arrays of the cloud's length)."""

    u: np.ndarray | None  # float32 pixel column (NaN when culled before the image test);
    v: np.ndarray | None  # None from Projector.fuse, which does not keep them
    depth: np.ndarray    # float32 z in the camera frame (m)
    pix: np.ndarray      # int32 flat pixel index v*w+u, -1 outside the view
    idx: np.ndarray      # int32 indices of the in-view points
    visible: np.ndarray | None = None  # bool: in view and not occluded
    occluded: int = 0

    @property
    def in_view(self) -> int:
        return int(self.idx.shape[0])


class Projector:
    """Projects clouds into one camera; owns the z-buffer so nothing big is allocated per cloud."""

    def __init__(self, intr: Intrinsics, min_depth: float = 0.1, max_depth: float = 200.0,
                 splat_px: int = 2, occlusion_rel_tol: float = 0.05,
                 occlusion_abs_tol: float = 0.1, threads: int = 1) -> None:
        if intr.width > 0xFFFF or intr.height > 0x7FFF:
            raise ValueError(f"camera image {intr.width}x{intr.height} is too large for the fusion "
                             "(at most 65535 columns and 32767 rows)")
        self.intr = intr
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.splat_px = int(splat_px)
        self.rel_tol, self.abs_tol = float(occlusion_rel_tol), float(occlusion_abs_tol)
        if self.splat_px < 0:
            raise ValueError(f"splat_px must be >= 0; got {splat_px}")
        # fuse's z-buffer: the image with a border of splat_px pixels on every side (+inf), and
        # its 2^COARSE_SHIFT-block minima with a spare block column and row (a window reads 2 x 2)
        r = self.splat_px
        self._zw = intr.width + 2 * r
        self._zbuf = np.full(self._zw * (intr.height + 2 * r), np.inf, dtype=np.float32)
        self._cw = (self._zw >> COARSE_SHIFT) + 2
        self._coarse = np.full(self._cw * (((intr.height + 2 * r) >> COARSE_SHIFT) + 2), np.inf, dtype=np.float32)
        self._plain_zbuf: np.ndarray | None = None  # visibility()'s, unbordered (allocated on use)
        if threads not in (1, 2):
            raise ValueError(f"threads must be 1 or 2; got {threads}")
        self.threads = int(threads)
        self._pool: ThreadPoolExecutor | None = None
        self._reset: Future | None = None  # the helper's pending z-buffer clean-up of the last cloud
        self._dummy_rgb = np.zeros((1, 1, 3), np.uint8)
        self._dummy_ref = np.zeros((1, 1), np.float32)

    def _helper(self) -> ThreadPoolExecutor | None:
        """fuse's second thread (threads=2), started on first use; None with one thread."""
        if self.threads == 1:
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="fusion")
        return self._pool

    def close(self) -> None:
        """Stops the second thread, if any (it also ends with the process)."""
        if self._reset is not None:
            self._reset.result()
            self._reset = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def project(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, cam_from_lidar: np.ndarray) -> Projection:
        """x, y, z: float32 1-D (strided views into a cloud are fine); cam_from_lidar 4x4."""
        n = x.shape[0]
        u = np.empty(n, np.float32)
        v = np.empty(n, np.float32)
        depth = np.empty(n, np.float32)
        pix = np.empty(n, np.int32)
        idx = np.empty(n, np.int32)
        i = self.intr
        inview = _project_kernel(x, y, z, np.ascontiguousarray(cam_from_lidar, dtype=np.float64),
                                 i.fx, i.fy, i.cx, i.cy, i.dist, i.model, i.r2_max, i.width, i.height,
                                 self.min_depth, self.max_depth, u, v, depth, pix, idx)
        return Projection(u, v, depth, pix, idx[:inview])

    def visibility(self, proj: Projection) -> Projection:
        """Fills proj.visible / proj.occluded with the splat z-buffer rule (module doc)."""
        vis = np.zeros(proj.pix.shape[0], np.bool_)
        if self._plain_zbuf is None:
            self._plain_zbuf = np.full(self.intr.width * self.intr.height, np.inf, dtype=np.float32)
        proj.occluded = int(_visibility_kernel(proj.pix, proj.depth, proj.idx, self.intr.width,
                                               self.intr.height, self.splat_px, self.rel_tol,
                                               self.abs_tol, self._plain_zbuf, vis))
        proj.visible = vis
        return proj

    def project_visible(self, x, y, z, cam_from_lidar) -> Projection:
        return self.visibility(self.project(x, y, z, cam_from_lidar))

    def _check(self, img: np.ndarray, what: str = "image") -> None:
        if img.shape[0] != self.intr.height or img.shape[1] != self.intr.width:
            raise ValueError(f"{what} is {img.shape[1]}x{img.shape[0]} but the camera model is "
                             f"{self.intr.width}x{self.intr.height}")

    def sample(self, img: np.ndarray, proj: Projection, scale: float = 1.0) -> np.ndarray:
        """Mono image value (any numeric dtype) * scale at each visible point, NaN elsewhere."""
        self._check(img)
        out = np.empty(proj.pix.shape[0], np.float32)
        _sample_kernel(np.ascontiguousarray(img), proj.pix, proj.visible, np.float32(scale), out)
        return out

    def sample_rgb(self, img: np.ndarray, proj: Projection) -> np.ndarray:
        """rgb8 (H, W, 3) -> PCL packed float32 rgb per point."""
        self._check(img)
        out = np.empty(proj.pix.shape[0], np.uint32)
        _sample_rgb_kernel(np.ascontiguousarray(img), proj.pix, proj.visible, out)
        return out.view(np.float32)

    def sparse_depth(self, proj: Projection) -> np.ndarray:
        """32FC1 (H, W) metres: nearest visible point per pixel, NaN where none (REP-118)."""
        img = np.empty((self.intr.height, self.intr.width), np.float32)
        _sparse_depth_kernel(proj.pix, proj.depth, proj.visible, img)
        return img

    def fuse(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, intensity: np.ndarray | None,
             cam_from_lidar: np.ndarray, ir: np.ndarray | None, rgb: np.ndarray | None = None,
             ref_depth: np.ndarray | None = None, ir_scale: float = 1.0,
             proj_xyz: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
             out: np.ndarray | None = None, rgb_column: int | None = None,
             ref_column: int | None = None, pack: bool = True) -> tuple[np.ndarray, Projection]:
        """The whole fusion of one cloud: project (proj_xyz: e.g. motion-compensated points
        used for projection only), occlusion, lookups, pack. Returns ((N, F) float32 rows
        x y z intensity ir [rgb] [ref-z], projection). ir None: ir field all NaN (visibility
        is still computed, e.g. for lidar_depth). `out`: the rows written in place, e.g. into
        the outgoing message's buffer (no copy after); it may have more columns, left NaN for
        the caller. `rgb_column` / `ref_column` move rgb and ref-z elsewhere than the next free
        columns (e.g. rgb into column 4 with no IR camera). `pack=False`: `out` already holds
        the rows (e.g. fused with another camera; intensity may then be None); only this
        camera's columns are written, where visible. Four kernels: pack and project over every
        point, z-buffer over the in-view ones, then occlusion + lookups; with threads=2 (clouds
        of PARALLEL_MIN_POINTS or more) the pack runs beside the projection and each half of the
        lookups on its own thread (the same rows, bit for bit), and the z-buffer's clean-up runs
        on the helper after the call returns (the next call waits for it first: 0.91x the
        time per cloud, measured A/B on a KITTI scan)."""
        px, py, pz = proj_xyz if proj_xyz is not None else (x, y, z)
        use_ir, use_rgb, use_ref = ir is not None, rgb is not None, ref_depth is not None
        for img, what in ((ir, "IR image"), (rgb, "colour image"), (ref_depth, "reference depth")):
            if img is not None:
                self._check(img, what)
        n = x.shape[0]
        i = self.intr
        c_rgb = 5 if rgb_column is None else int(rgb_column)
        c_ref = (5 + use_rgb) if ref_column is None else int(ref_column)
        used = [4] * use_ir + [c_rgb] * use_rgb + [c_ref] * use_ref
        cols = max([5, *(c + 1 for c in used)])
        if out is None:
            if not pack:
                raise ValueError("pack=False writes into rows that exist: pass them as out")
            out = np.empty((n, cols), np.float32)
        elif out.ndim != 2 or out.shape[0] != n or out.shape[1] < cols or out.dtype != np.float32:
            raise ValueError(f"out must be float32 ({n}, >= {cols}); got {out.dtype} {out.shape}")
        if min(used, default=4) < 4 or len(set(used)) < len(used):
            raise ValueError(f"rgb_column {rgb_column} / ref_column {ref_column} must be distinct camera "
                             "columns (>= 4, not the IR column 4 when there is an IR image)")
        if pack and intensity is None:
            raise ValueError("intensity is needed to pack the rows")
        depth = np.empty(n, np.float32)
        uv = np.empty(n, np.int32)
        pix = np.empty(n, np.int32)
        idx = np.empty(n, np.int32)
        pool = self._helper() if n >= PARALLEL_MIN_POINTS else None
        packed = pool.submit(pack_rows, x, y, z, intensity, out) if pool and pack else None
        if pack and not pool:
            pack_rows(x, y, z, intensity, out)
        _project_uv_kernel(px, py, pz, np.ascontiguousarray(cam_from_lidar, dtype=np.float64), i.fx, i.fy, i.cx,
                           i.cy, i.dist, i.model, i.r2_max, i.width, i.height, self.min_depth, self.max_depth,
                           depth, uv)
        visible = np.zeros(n, np.bool_)
        grid = (self._zw, self._zbuf, self._coarse, self._cw, self.rel_tol, self.abs_tol)
        cams = (visible, np.ascontiguousarray(ir) if use_ir else self._dummy_ref, np.float32(ir_scale), use_ir,
                np.ascontiguousarray(rgb) if use_rgb else self._dummy_rgb, use_rgb, c_rgb,
                np.ascontiguousarray(ref_depth, dtype=np.float32) if use_ref else self._dummy_ref, use_ref, c_ref,
                out, out.view(np.uint32))

        def lookup(part: np.ndarray) -> int:
            return _lookup_kernel((pix, uv, part, depth), self.splat_px, grid, cams)

        inview, first = 0, None
        if self._reset is not None:  # the previous cloud's z-buffer clean-up, done meanwhile on the helper
            self._reset.result()
            self._reset = None
        try:
            inview = _zbuffer_kernel(uv, depth, i.width, self.splat_px, self._zw, idx, pix, self._zbuf,
                                     self._coarse, self._cw)
            if packed is not None:
                packed.result()  # the lookups write into the packed rows
            if pool:
                half = inview // 2
                first = pool.submit(lookup, idx[:half])
                occluded = lookup(idx[half:inview])
                occluded += first.result()
            else:
                occluded = lookup(idx[:inview])
        finally:  # whatever happened, the z-buffer is clean for the next cloud (after both threads)
            for job in (packed, first):
                if job is not None:
                    wait([job])
            reset = (uv, idx[:inview], self.splat_px, self._zw, self._zbuf, self._coarse, self._cw)
            if pool is not None:  # off this call's path: the next fuse waits for it first
                self._reset = pool.submit(_reset_kernel, *reset)
            else:
                _reset_kernel(*reset)
        # pix/depth hold garbage outside idx: everything downstream reads them through
        # `visible` (False there) or idx
        proj = Projection(None, None, depth, pix, idx[:inview], visible, int(occluded))
        return out, proj


def project_points(points: np.ndarray, cam_from_lidar: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Convenience: (N, 3) -> (N, 2) float64 pixel coordinates (NaN where culled by depth)."""
    p = np.ascontiguousarray(points, dtype=np.float32)
    proj = Projector(intr, min_depth=1e-6, max_depth=np.inf).project(p[:, 0].copy(), p[:, 1].copy(),
                                                                     p[:, 2].copy(), cam_from_lidar)
    return np.stack([proj.u, proj.v], axis=1).astype(np.float64)
