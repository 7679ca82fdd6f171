"""LiDAR points -> a camera: transform, distortion, field-of-view culling, occlusion, and
the camera values (IR, colour, depth) each visible point sees. ROS-free, numba kernels.

Pipeline (`Projector.fuse`, one call per cloud):
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
4. `pack`: the fused cloud's float32 fields, interleaved, in one kernel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

_JIT = dict(cache=True, nogil=True, fastmath=False)

COARSE_SHIFT = 2  # occlusion pre-check on 4x4-pixel blocks
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
def _project_pack_kernel(x, y, z, intensity, m, fx, fy, cx, cy, d, model, r2max, w, h, zmin, zmax,
                         out, depth, pix, idx, zbuf, coarse, cw):
    """The fusion's single pass over every point: copy x y z intensity into the output row
    (camera fields NaN), project, and keep the nearest depth per pixel in zbuf. depth and pix
    are written for the in-view points (idx) only: nothing reads them elsewhere."""
    ncol = out.shape[1]
    nan = np.float32(np.nan)
    inview = 0
    r00, r01, r02, t0 = m[0, 0], m[0, 1], m[0, 2], m[0, 3]
    r10, r11, r12, t1 = m[1, 0], m[1, 1], m[1, 2], m[1, 3]
    r20, r21, r22, t2 = m[2, 0], m[2, 1], m[2, 2], m[2, 3]
    wlim, hlim = w - 0.5, h - 0.5
    for i in range(x.shape[0]):
        px, py, pz = x[i], y[i], z[i]
        out[i, 0] = px
        out[i, 1] = py
        out[i, 2] = pz
        out[i, 3] = intensity[i]
        for c in range(4, ncol):
            out[i, c] = nan
        # the body of _project_one, written out: the hot path runs ~2.5x faster without
        # the inlined helper's tuple return
        Z = r20 * px + r21 * py + r22 * pz + t2
        if not (Z >= zmin and Z <= zmax):  # also rejects NaN
            continue
        inv = 1.0 / Z
        a = (r00 * px + r01 * py + r02 * pz + t0) * inv
        b = (r10 * px + r11 * py + r12 * pz + t1) * inv
        if model != 0:
            if a * a + b * b > r2max:
                continue
            a, b = _distort(a, b, d, model)
        uu = fx * a + cx
        vv = fy * b + cy
        if uu >= -0.5 and vv >= -0.5 and uu < wlim and vv < hlim:
            p = int(vv + 0.5) * w + int(uu + 0.5)
            pix[i] = p
            depth[i] = Z
            idx[inview] = i
            inview += 1
            if Z < zbuf[p]:
                zbuf[p] = Z
                c = (int(vv + 0.5) >> COARSE_SHIFT) * cw + (int(uu + 0.5) >> COARSE_SHIFT)
                if Z < coarse[c]:
                    coarse[c] = Z
    return inview


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


@njit(**_JIT)
def _lookup_kernel(pix, idx, depth, w, h, r, rel_tol, abs_tol, zbuf, coarse, cw, visible, ir, ir_scale,
                   use_ir, rgb, use_rgb, ref, use_ref, out, bits):
    """Occlusion test + camera lookups for the in-view points; resets zbuf to +inf."""
    irf = ir.reshape(-1)
    rgbf = rgb.reshape(rgb.shape[0] * rgb.shape[1], rgb.shape[2])
    reff = ref.reshape(-1)
    c_ref = 6 if use_rgb else 5
    occluded = 0
    for k in range(idx.shape[0]):
        i = idx[k]
        p = pix[i]
        zi = depth[i]
        # _occluded, written out (hot path): nearest depth in the (2r+1)^2 footprint; first
        # the few coarse cells (minima of 2^COARSE_SHIFT-pixel blocks) covering it: when even
        # they hold nothing nearer, the point is visible without reading every pixel
        tol = rel_tol * zi
        if tol < abs_tol:
            tol = abs_tol
        limit = zi - tol
        iv = p // w
        iu = p - iv * w
        u0 = max(iu - r, 0)
        u1 = min(iu + r, w - 1)
        v0 = max(iv - r, 0)
        v1 = min(iv + r, h - 1)
        m = np.float32(np.inf)
        for cv in range(v0 >> COARSE_SHIFT, (v1 >> COARSE_SHIFT) + 1):
            for cu in range(u0 >> COARSE_SHIFT, (u1 >> COARSE_SHIFT) + 1):
                m = min(m, coarse[cv * cw + cu])
        if m < limit:
            m = np.float32(np.inf)
            for vv in range(v0, v1 + 1):
                row = vv * w
                for uu in range(u0, u1 + 1):
                    m = min(m, zbuf[row + uu])
            if m < limit:
                occluded += 1
                continue
        visible[i] = True
        if use_ir:
            out[i, 4] = irf[p] * ir_scale
        if use_rgb:
            bits[i, 5] = (np.uint32(rgbf[p, 0]) << 16) | (np.uint32(rgbf[p, 1]) << 8) | np.uint32(rgbf[p, 2])
        if use_ref:
            rz = reff[p]
            if rz > 0:  # 0 / NaN: no camera depth there
                out[i, c_ref] = rz - depth[i]
    for k in range(idx.shape[0]):
        p = pix[idx[k]]
        zbuf[p] = np.inf
        iv = p // w
        coarse[(iv >> COARSE_SHIFT) * cw + ((p - iv * w) >> COARSE_SHIFT)] = np.inf
    return occluded


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
                 occlusion_abs_tol: float = 0.1) -> None:
        self.intr = intr
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.splat_px = int(splat_px)
        self.rel_tol, self.abs_tol = float(occlusion_rel_tol), float(occlusion_abs_tol)
        self._zbuf = np.full(intr.width * intr.height, np.inf, dtype=np.float32)
        self._cw = (intr.width >> COARSE_SHIFT) + 1
        self._coarse = np.full(self._cw * ((intr.height >> COARSE_SHIFT) + 1), np.inf, dtype=np.float32)
        self._dummy_rgb = np.zeros((1, 1, 3), np.uint8)
        self._dummy_ref = np.zeros((1, 1), np.float32)

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
        proj.occluded = int(_visibility_kernel(proj.pix, proj.depth, proj.idx, self.intr.width,
                                               self.intr.height, self.splat_px, self.rel_tol,
                                               self.abs_tol, self._zbuf, vis))
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

    def fuse(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, intensity: np.ndarray,
             cam_from_lidar: np.ndarray, ir: np.ndarray | None, rgb: np.ndarray | None = None,
             ref_depth: np.ndarray | None = None, ir_scale: float = 1.0,
             proj_xyz: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
             ) -> tuple[np.ndarray, Projection]:
        """The whole fusion of one cloud: project (proj_xyz: e.g. motion-compensated points
        used for projection only), occlusion, lookups, pack. Returns ((N, F) float32 rows
        x y z intensity ir [rgb] [ref-z], projection). ir None: ir field all NaN (visibility
        is still computed, e.g. for lidar_depth). Two kernels: one pass over every point
        (pack + project + z-buffer), one over the in-view points (occlusion + lookups)."""
        px, py, pz = proj_xyz if proj_xyz is not None else (x, y, z)
        use_ir, use_rgb, use_ref = ir is not None, rgb is not None, ref_depth is not None
        for img, what in ((ir, "IR image"), (rgb, "colour image"), (ref_depth, "reference depth")):
            if img is not None:
                self._check(img, what)
        n = x.shape[0]
        i = self.intr
        out = np.empty((n, 5 + use_rgb + use_ref), np.float32)
        depth = np.empty(n, np.float32)
        pix = np.empty(n, np.int32)
        idx = np.empty(n, np.int32)
        inview = _project_pack_kernel(px, py, pz, intensity, np.ascontiguousarray(cam_from_lidar, dtype=np.float64),
                                      i.fx, i.fy, i.cx, i.cy, i.dist, i.model, i.r2_max, i.width, i.height,
                                      self.min_depth, self.max_depth, out, depth, pix, idx, self._zbuf,
                                      self._coarse, self._cw)
        if proj_xyz is not None:  # rows carry the original coordinates
            out[:, 0], out[:, 1], out[:, 2] = x, y, z
        visible = np.zeros(n, np.bool_)
        occluded = _lookup_kernel(
            pix, idx[:inview], depth, i.width, i.height, self.splat_px, self.rel_tol, self.abs_tol,
            self._zbuf, self._coarse, self._cw, visible, np.ascontiguousarray(ir) if use_ir else self._dummy_ref,
            np.float32(ir_scale), use_ir, np.ascontiguousarray(rgb) if use_rgb else self._dummy_rgb, use_rgb,
            np.ascontiguousarray(ref_depth, dtype=np.float32) if use_ref else self._dummy_ref, use_ref,
            out, out.view(np.uint32))
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
