"""numba kernels of the built-in scene: ray casting against analytic primitives and the sensor models.

Why this shape: camera rays are fixed in the camera frame, so per frame only the handful of
primitives is moved into the camera frame (in Python). Images are cast one row at a time into
cache-resident row buffers: each primitive whose projected bounding rectangle covers the row
is intersected with the pixels of that rectangle only, nearest first, skipping pixels that
already hold a nearer surface; then the row is shaded. LiDAR columns each have their own
time, so poses are evaluated per column here, and primitives are culled per column by their
bounding sphere. Noise comes from a counter-based hash of (seed, frame, pixel), so frames are
deterministic, cheap and need no RNG state. Kernels are single-threaded, release the GIL (camera
rows can be split into bands on threads with identical results) and are compiled with
cache=True (start-up stays fast).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

ROOM, BOX, SPHERE, CYLINDER = 0, 1, 2, 3
PRIM_COLS = 15  # kind, size(3), center(3), yaw, amplitude(3), omega, phase, yaw_rate, bounding radius
MAT_COLS = 9    # albedo(3), ir, specular, transparency, depth hole probability, texture id, 1/texture scale
EPS = 1e-6

_JIT = dict(cache=True, nogil=True, error_model="numpy", fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})


def prim_row(kind, size, center, yaw, amplitude, omega, phase, yaw_rate, radius) -> np.ndarray:
    return np.array([kind, *size, *center, yaw, *amplitude, omega, phase, yaw_rate, radius], dtype=np.float64)


def material_table(materials, textures: dict) -> np.ndarray:
    """One row per material. The depth hole probability folds the material's own hole_prob
    with darkness (too little projector return: probability rises as IR reflectivity falls
    below 0.15) and transparency."""
    tab = np.zeros((len(materials), MAT_COLS), dtype=np.float64)
    for i, m in enumerate(materials):
        dark = float(np.clip(1.0 - m.ir_reflectivity / 0.15, 0.0, 1.0)) * 0.95
        tab[i, 0:3] = m.albedo
        tab[i, 3] = m.ir_reflectivity
        tab[i, 4] = m.specular
        tab[i, 5] = m.transparency
        tab[i, 6] = max(m.hole_prob, dark)
        tab[i, 7] = textures[m.texture]
        tab[i, 8] = 1.0 / m.texture_scale
    return tab


# ---------------------------------------------------------------------------- motion
@njit(**_JIT)
def prim_state(row, t):
    """(x, y, z, yaw) of a primitive at t."""
    s = math.sin(row[11] * t + row[12])
    return (row[4] + row[8] * s, row[5] + row[9] * s, row[6] + row[10] * s, row[7] + row[13] * t)


@njit(**_JIT)
def base_state(bp, t):
    """(x, y, z, yaw) of base_link in the world at t."""
    x = bp[0] + bp[1] * math.sin(bp[2] * t + bp[3])
    y = bp[4] + bp[5] * math.sin(bp[6] * t + bp[7])
    yaw = bp[8] + bp[9] * math.sin(bp[10] * t + bp[11])
    return x, y, bp[12], yaw


@njit(**_JIT)
def base_velocity_world(bp, t):
    """(vx, vy, yaw rate) of base_link in the world frame at t."""
    vx = bp[1] * bp[2] * math.cos(bp[2] * t + bp[3])
    vy = bp[5] * bp[6] * math.cos(bp[6] * t + bp[7])
    wz = bp[9] * bp[10] * math.cos(bp[10] * t + bp[11])
    return vx, vy, wz


# ---------------------------------------------------------------------------- hashing
@njit(**_JIT)
def _mix(x):
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(**_JIT)
def _hash(key, a, b):
    return _mix(key ^ _mix(np.uint64(a) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(b)))


@njit(**_JIT)
def _uniform(h):
    return float(h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(**_JIT)
def _gauss(h):
    """Approximately standard normal from one 64-bit hash (Irwin-Hall of four 16-bit parts)."""
    m = np.uint64(0xFFFF)
    s = (float(h & m) + float((h >> np.uint64(16)) & m) + float((h >> np.uint64(32)) & m)
         + float(h >> np.uint64(48)) + 2.0) * (1.0 / 65536.0)
    return (s - 2.0) * 1.7320508075688772


# ---------------------------------------------------------------------------- geometry
@njit(inline="always", **_JIT)
def intersect(kind, sx, sy, sz, ox, oy, oz, dx, dy, dz):
    """Nearest hit t > EPS of the ray o + t d with a primitive in its local frame.
    Returns (t, nx, ny, nz, face) with the local normal facing the ray; t = inf for a miss."""
    inf = np.inf
    if kind == ROOM:
        # seen from inside: the exit face; the inward normal faces the ray
        tx = (sx - ox) / dx if dx > 0 else ((-sx - ox) / dx if dx < 0 else inf)
        ty = (sy - oy) / dy if dy > 0 else ((-sy - oy) / dy if dy < 0 else inf)
        tz = (sz - oz) / dz if dz > 0 else ((-sz - oz) / dz if dz < 0 else inf)
        if tx <= ty and tx <= tz:
            return tx, (-1.0 if dx > 0 else 1.0), 0.0, 0.0, (1 if dx > 0 else 0)
        if ty <= tz:
            return ty, 0.0, (-1.0 if dy > 0 else 1.0), 0.0, (3 if dy > 0 else 2)
        return tz, 0.0, 0.0, (-1.0 if dz > 0 else 1.0), (5 if dz > 0 else 4)
    if kind == BOX:
        t1 = (-sx - ox) / dx
        t2 = (sx - ox) / dx
        tnx = min(t1, t2)
        tfx = max(t1, t2)
        t1 = (-sy - oy) / dy
        t2 = (sy - oy) / dy
        tny = min(t1, t2)
        tfy = max(t1, t2)
        t1 = (-sz - oz) / dz
        t2 = (sz - oz) / dz
        tnz = min(t1, t2)
        tfz = max(t1, t2)
        tn = max(tnx, max(tny, tnz))
        tf = min(tfx, min(tfy, tfz))
        if tn > tf or tf < EPS:
            return inf, 0.0, 0.0, 0.0, 0
        if tn < EPS:
            return inf, 0.0, 0.0, 0.0, 0  # origin inside a solid: not visible
        if tn == tnx:
            return tn, (1.0 if dx < 0 else -1.0), 0.0, 0.0, (1 if dx < 0 else 0)
        if tn == tny:
            return tn, 0.0, (1.0 if dy < 0 else -1.0), 0.0, (3 if dy < 0 else 2)
        return tn, 0.0, 0.0, (1.0 if dz < 0 else -1.0), (5 if dz < 0 else 4)
    if kind == SPHERE:
        a = dx * dx + dy * dy + dz * dz
        b = ox * dx + oy * dy + oz * dz
        c = ox * ox + oy * oy + oz * oz - sx * sx
        disc = b * b - a * c
        if disc < 0.0:
            return inf, 0.0, 0.0, 0.0, 0
        t = (-b - math.sqrt(disc)) / a
        if t < EPS:
            return inf, 0.0, 0.0, 0.0, 0
        r = 1.0 / sx
        return t, (ox + t * dx) * r, (oy + t * dy) * r, (oz + t * dz) * r, 0
    # cylinder, axis local z, radius sx, half height sy
    best = inf
    nx = 0.0
    ny = 0.0
    nz = 0.0
    face = 0
    a = dx * dx + dy * dy
    if a > 0.0:
        b = ox * dx + oy * dy
        c = ox * ox + oy * oy - sx * sx
        disc = b * b - a * c
        if disc >= 0.0:
            t = (-b - math.sqrt(disc)) / a
            if t > EPS:
                z = oz + t * dz
                if -sy <= z <= sy:
                    best = t
                    nx = (ox + t * dx) / sx
                    ny = (oy + t * dy) / sx
    if dz != 0.0:
        for sgn in (-1.0, 1.0):
            t = (sgn * sy - oz) / dz
            if EPS < t < best:
                x = ox + t * dx
                y = oy + t * dy
                if x * x + y * y <= sx * sx:
                    best = t
                    nx = 0.0
                    ny = 0.0
                    nz = sgn
                    face = 5 if sgn > 0 else 4
    return best, nx, ny, nz, face


@njit(inline="always", **_JIT)
def texture(tex, inv_scale, x, y, z):
    """Brightness factor of a procedural texture at an object-local point (cheap: no
    transcendental functions, one integer hash at most)."""
    if tex == 0:
        return 1.0
    fx = x * inv_scale + 1024.0  # offset keeps the floors positive inside the scene
    fy = y * inv_scale + 1024.0
    fz = z * inv_scale + 1024.0
    ix = int(fx)
    iy = int(fy)
    iz = int(fz)
    if tex == 1:  # checker
        return 1.0 if ((ix + iy + iz) & 1) == 0 else 0.62
    if tex == 2:  # stripes (wood grain, painted bands): a triangle wave along x + z/2
        f = fx + 0.5 * fz
        f = f - int(f)
        return 0.6 + 0.4 * abs(2.0 * f - 1.0)
    # tiles: random brightness per cell, with grout lines
    hh = (ix * 73856093) ^ (iy * 19349663) ^ (iz * 83492791)
    hh = ((hh ^ (hh >> 13)) * 1274126177) & 0xFFFF
    gx = fx - ix
    gy = fy - iy
    gz = fz - iz
    g = min(min(min(gx, 1 - gx), min(gy, 1 - gy)), min(gz, 1 - gz))
    return (0.75 + 0.25 * hh * (1.0 / 65536.0)) * (0.7 if g < 0.03 else 1.0)


@njit(**_JIT)
def _cast_row(v, rx, ry, order, rects, rot_oc, org_o, zmin, params, pmats, mats, row):
    """Cast the camera rays (x, y, 1) of image row v against the primitives whose pixel
    rectangle covers them, nearest first (order; the room is last and only tested where
    nothing opaque was hit). row (8, W) receives per pixel: z_opaque (depth along the optical
    axis, rays have z = 1), its material, its primitive, its local normal xyz, z_transparent,
    its material (inf / -1 where none). Row-local buffers stay in cache."""
    w = rx.shape[1]
    for u in range(w):
        row[0, u] = np.inf
        row[1, u] = -1.0
        row[2, u] = -1.0
        row[6, u] = np.inf
        row[7, u] = -1.0
    for k in range(order.shape[0]):
        i = order[k]
        if v < rects[i, 1] or v >= rects[i, 3]:
            continue
        kind = int(params[i, 0])
        sx = params[i, 1]
        sy = params[i, 2]
        sz = params[i, 3]
        ox = org_o[i, 0]
        oy = org_o[i, 1]
        oz = org_o[i, 2]
        r00 = rot_oc[i, 0, 0]
        r01 = rot_oc[i, 0, 1]
        r02 = rot_oc[i, 0, 2]
        r10 = rot_oc[i, 1, 0]
        r11 = rot_oc[i, 1, 1]
        r12 = rot_oc[i, 1, 2]
        r20 = rot_oc[i, 2, 0]
        r21 = rot_oc[i, 2, 1]
        r22 = rot_oc[i, 2, 2]
        zm = zmin[i]
        for u in range(rects[i, 0], rects[i, 2]):
            if zm >= row[0, u]:
                continue
            if kind == ROOM and row[1, u] >= 0.0:
                continue
            x = rx[v, u]
            y = ry[v, u]
            dx = r00 * x + r01 * y + r02
            dy = r10 * x + r11 * y + r12
            dz = r20 * x + r21 * y + r22
            t, nx, ny, nz, face = intersect(kind, sx, sy, sz, ox, oy, oz, dx, dy, dz)
            if t == np.inf:
                continue
            m = pmats[i, face]
            if mats[m, 5] >= 0.5:
                if t < row[6, u]:
                    row[6, u] = t
                    row[7, u] = m
            elif t < row[0, u]:
                row[0, u] = t
                row[1, u] = m
                row[2, u] = i
                row[3, u] = nx
                row[4, u] = ny
                row[5, u] = nz


@njit(inline="always", **_JIT)
def _surface(x, y, row, u, rot_oc, org_o, rot_co, mats):
    """Camera-frame normal and texture factor of the opaque hit stored in row at u."""
    i = int(row[2, u])
    m = int(row[1, u])
    z = row[0, u]
    r = rot_oc[i]
    lx = org_o[i, 0] + z * (r[0, 0] * x + r[0, 1] * y + r[0, 2])
    ly = org_o[i, 1] + z * (r[1, 0] * x + r[1, 1] * y + r[1, 2])
    lz = org_o[i, 2] + z * (r[2, 0] * x + r[2, 1] * y + r[2, 2])
    tx = texture(int(mats[m, 7]), mats[m, 8], lx, ly, lz)
    c = rot_co[i]
    nx = row[3, u]
    ny = row[4, u]
    nz = row[5, u]
    return (c[0, 0] * nx + c[0, 1] * ny + c[0, 2] * nz, c[1, 0] * nx + c[1, 1] * ny + c[1, 2] * nz,
            c[2, 0] * nx + c[2, 1] * ny + c[2, 2] * nz, tx)


@njit(**_JIT)
def _lambert(x, y, z, n0, n1, n2, lx, ly, lz):
    ax = lx - x
    ay = ly - y
    az = lz - z
    inv = 1.0 / math.sqrt(ax * ax + ay * ay + az * az)
    return max(0.0, (n0 * ax + n1 * ay + n2 * az) * inv)


@njit(**_JIT)
def _specular(x, y, z, n0, n1, n2, lx, ly, lz):
    """Phong highlight (exponent 24) of a point light seen from the camera at the origin."""
    ax = lx - x
    ay = ly - y
    az = lz - z
    il = 1.0 / math.sqrt(ax * ax + ay * ay + az * az)
    ax *= il
    ay *= il
    az *= il
    d = n0 * ax + n1 * ay + n2 * az
    rx_ = 2 * d * n0 - ax
    ry_ = 2 * d * n1 - ay
    rz_ = 2 * d * n2 - az
    iv = 1.0 / math.sqrt(x * x + y * y + z * z)
    c = -(rx_ * x + ry_ * y + rz_ * z) * iv
    if c <= 0.0:
        return 0.0
    c3 = c * c * c
    c6 = c3 * c3
    c12 = c6 * c6
    return c12 * c12


@njit(**_JIT)
def _blob_table(key, h, w, cell):
    """Value-noise lattice for coherent hole blobs (features ~cell pixels)."""
    gh = int(h / cell) + 2
    gw = int(w / cell) + 2
    tab = np.empty((gh, gw))
    for a in range(gh):
        for b in range(gw):
            tab[a, b] = _uniform(_hash(key, a, b))
    return tab


@njit(**_JIT)
def _gauss_table(key, h, w, cell):
    """Lattice of standard normals for spatially correlated noise (features ~cell pixels)."""
    gh = int(h / cell) + 2
    gw = int(w / cell) + 2
    tab = np.empty((gh, gw))
    for a in range(gh):
        for b in range(gw):
            tab[a, b] = _gauss(_hash(key, a, b))
    return tab


@njit(inline="always", **_JIT)
def _smooth_gauss(tab, u, v, inv_cell):
    """Unit-variance, spatially smooth normal noise: the lattice blended with weights whose
    squares are renormalised (so the variance is 1 everywhere, not only at lattice nodes)."""
    fu = u * inv_cell
    fv = v * inv_cell
    iu = int(fu)
    iv = int(fv)
    au = fu - iu
    av = fv - iv
    au = au * au * (3.0 - 2.0 * au)
    av = av * av * (3.0 - 2.0 * av)
    w00 = (1 - au) * (1 - av)
    w10 = au * (1 - av)
    w01 = (1 - au) * av
    w11 = au * av
    g = w00 * tab[iv, iu] + w10 * tab[iv, iu + 1] + w01 * tab[iv + 1, iu] + w11 * tab[iv + 1, iu + 1]
    return g / math.sqrt(w00 * w00 + w10 * w10 + w01 * w01 + w11 * w11)


@njit(**_JIT)
def _blob(tab, u, v, inv_cell):
    fu = u * inv_cell
    fv = v * inv_cell
    iu = int(fu)
    iv = int(fv)
    au = fu - iu
    av = fv - iv
    au = au * au * (3.0 - 2.0 * au)
    av = av * av * (3.0 - 2.0 * av)
    return ((tab[iv, iu] * (1 - au) + tab[iv, iu + 1] * au) * (1 - av)
            + (tab[iv + 1, iu] * (1 - au) + tab[iv + 1, iu + 1] * au) * av)


@njit(**_JIT)
def render_color(rx, ry, order, rects, rot_oc, org_o, rot_co, zmin, params, pmats, mats, light, key, noise, out,
                 gt, v0, v1):
    """rgb8 of the colour camera: albedo x texture x (ambient + Lambert of a point light),
    Phong highlights on shiny materials, glass blended over what is behind it; gt: the exact
    depth of the first surface in the colour optical frame (NaN where none). Rows v0..v1-1
    only: bands of rows can run in parallel threads (nogil) with identical results."""
    h, w = rx.shape
    lx = light[0]
    ly = light[1]
    lz = light[2]
    row = np.empty((8, w))
    for v in range(v0, v1):
        _cast_row(v, rx, ry, order, rects, rot_oc, org_o, zmin, params, pmats, mats, row)
        for u in range(w):
            x = rx[v, u]
            y = ry[v, u]
            zo = row[0, u]
            mo = int(row[1, u])
            zt = row[6, u]
            mt = int(row[7, u])
            zf = min(zo, zt)
            gt[v, u] = zf if zf < np.inf else np.nan
            r = 0.0
            g = 0.0
            b = 0.0
            if mo >= 0:
                n0, n1, n2, tx = _surface(x, y, row, u, rot_oc, org_o, rot_co, mats)
                px = x * zo
                py = y * zo
                lam = _lambert(px, py, zo, n0, n1, n2, lx, ly, lz)
                k = tx * (0.35 + 0.65 * lam)
                r = mats[mo, 0] * k
                g = mats[mo, 1] * k
                b = mats[mo, 2] * k
                sp = mats[mo, 4]
                if sp > 0.0:
                    s = sp * _specular(px, py, zo, n0, n1, n2, lx, ly, lz)
                    r = r * (1 - 0.5 * sp) + s
                    g = g * (1 - 0.5 * sp) + s
                    b = b * (1 - 0.5 * sp) + s
            if mt >= 0 and zt < zo:
                a = mats[mt, 5]
                r = a * r + (1 - a) * mats[mt, 0]
                g = a * g + (1 - a) * mats[mt, 1]
                b = a * b + (1 - a) * mats[mt, 2]
            hsh = _hash(key, v, u)
            r = r * 255.0 + noise * (float(hsh & np.uint64(0xFFFFF)) / 1048576.0 - 0.5)
            g = g * 255.0 + noise * (float((hsh >> np.uint64(20)) & np.uint64(0xFFFFF)) / 1048576.0 - 0.5)
            b = b * 255.0 + noise * (float((hsh >> np.uint64(40)) & np.uint64(0xFFFFF)) / 1048576.0 - 0.5)
            out[v, u, 0] = np.uint8(min(255.0, max(0.0, r + 0.5)))
            out[v, u, 1] = np.uint8(min(255.0, max(0.0, g + 0.5)))
            out[v, u, 2] = np.uint8(min(255.0, max(0.0, b + 0.5)))


@njit(**_JIT)
def render_depth_ir(rx, ry, rn, order, rects, rot_oc, org_o, rot_co, zmin, params, pmats, mats, fx, baseline,
                     sigma_px, subpixel_steps, min_z, max_z, depth_scale, key, blob_cell, emitter, dots, dfx,
                     dcx, dcy, emitter_on, ir_noise, corr, corr_cell, gt, depth, ir, labels, v0, v1):
    """The depth imager model (active stereo, depth in the left imager = infra1 optical frame):
    gt (exact first surface, glass included; NaN where none); depth (uint16 in depth_scale
    units) of the surface the stereo matcher sees (behind glass unless a hole) with disparity
    noise sigma_px (sigma_z = z^2 sigma_px / (fx B); a share corr of its variance is spatially
    correlated over ~corr_cell pixels, as a block matcher's errors are) quantised to
    1/subpixel_steps px, holes
    where the material's probability says (coherent blobs; dark, shiny, glass), on shiny
    surfaces seen head-on (saturation), in the right imager's occlusion shadow (left of near
    objects), and outside [min_z, max_z]; ir (mono8) of the left imager: IR reflectivity lit by
    the emitter's flood (cosine to the camera ray) over an ambient floor, plus the projector's dots,
    fixed in the emitter frame, absent in the emitter's own shadow. labels (H, W) int16, when not empty: material index of the
    first surface (glass included), -1 where none. rn: 1 / |(x, y, 1)| per pixel. Rows v0..v1-1
    only (the noise lattices depend on the frame, not on the band): bands can run in parallel."""
    h, w = rx.shape
    fb = fx * baseline
    want_labels = labels.shape[0] == h
    inv_cell = 1.0 / blob_cell
    blobs = _blob_table(key, h, w, blob_cell)
    glass_blobs = _blob_table(key + np.uint64(1), h, w, blob_cell)
    smooth = _gauss_table(key + np.uint64(2), h, w, corr_cell)
    inv_corr_cell = 1.0 / corr_cell
    a_iid = math.sqrt(1.0 - corr)
    a_corr = math.sqrt(corr)
    ex = emitter[0]
    ey = emitter[1]
    ez = emitter[2]
    drow = np.empty(w)      # disparity (px) of the surface the matcher sees; 0: none, -1: shadow
    mrow = np.empty(w, dtype=np.int64)
    crow = np.empty(w)      # cosine between the surface normal and the camera ray
    erow = np.empty(w)      # 1 where the emitter cannot see the surface (no dots)
    row = np.empty((8, w))
    for v in range(v0, v1):
        # pass 1: first surface (gt), the surface the matcher sees, and the IR image
        _cast_row(v, rx, ry, order, rects, rot_oc, org_o, zmin, params, pmats, mats, row)
        if emitter_on:
            # the emitter's shadow (it sits ex along +x): surfaces it cannot see get no dots;
            # the same right-to-left scan as the right imager's shadow, with baseline ex
            fe = fx * ex
            lowest = np.inf
            for u in range(w - 1, -1, -1):
                z = row[0, u]
                erow[u] = 0.0
                if z == np.inf:
                    continue
                ue = u - fe / z
                if ue > lowest + 0.5:
                    erow[u] = 1.0
                elif ue < lowest:
                    lowest = ue
        for u in range(w):
            x = rx[v, u]
            y = ry[v, u]
            z0 = row[0, u]
            m = int(row[1, u])
            z1 = row[6, u]
            m2 = int(row[7, u])
            zf = min(z0, z1)
            gt[v, u] = zf if zf < np.inf else np.nan
            if want_labels:
                labels[v, u] = m2 if z1 < z0 else m
            d = 0.0
            val = 0.0
            c = 0.0
            hsh = _hash(key, v, u)
            if m >= 0:
                d = fb / z0
                n0, n1, n2, tx = _surface(x, y, row, u, rot_oc, org_o, rot_co, mats)
                c = -(x * n0 + y * n1 + n2) * rn[v, u]
                refl = mats[m, 3] * (0.85 + 0.15 * tx)
                val = refl * (0.12 + 0.25 * c)
                if emitter_on and erow[u] == 0.0:
                    px = x * z0
                    py = y * z0
                    iu = int(dfx * (px - ex) / (z0 - ez) + dcx + 0.5)
                    iv = int(dfx * (py - ey) / (z0 - ez) + dcy + 0.5)
                    if 0 <= iu < dots.shape[1] and 0 <= iv < dots.shape[0]:
                        val += refl * dots[iv, iu] * (0.35 + 0.65 * min(1.0, 1.5 / (z0 * z0)))
                sp = mats[m, 4]
                if sp > 0.0 and c > 0.0:
                    c5 = c * c * c * c * c
                    c10 = c5 * c5
                    c20 = c10 * c10
                    val += sp * c20 * c20  # the emitter's highlight, exponent 40
            if m2 >= 0 and z1 < z0:
                a = mats[m2, 5]
                val = val * a + (1 - a) * mats[m2, 3] * 0.5
                hb = _uniform(_mix(hsh ^ np.uint64(0x5851F42D4C957F2D)))
                if _blob(glass_blobs, u, v, inv_cell) + 0.12 * (hb - 0.5) < mats[m2, 6]:
                    d = 0.0  # the matcher fails on the pane: hole
                # else it matches the texture behind the glass
            val = val * 255.0 + ir_noise * _gauss(_mix(hsh ^ np.uint64(0x2545F4914F6CDD1D)))
            ir[v, u] = np.uint8(min(255.0, max(0.0, val + 0.5)))
            drow[u] = d
            mrow[u] = m
            crow[u] = c
        # pass 2: shadow of the right imager (baseline along +x): a point is hidden from it
        # when a point to its right projects at or left of it in the right image
        lowest = np.inf
        for u in range(w - 1, -1, -1):
            d = drow[u]
            if d <= 0.0:
                continue
            ur = u - d
            if ur > lowest + 0.5:
                drow[u] = -1.0  # occluded: hole
            elif ur < lowest:
                lowest = ur
        # pass 3: holes by material, range limits, disparity noise, quantisation
        for u in range(w):
            d = drow[u]
            out = 0
            if d > 0.0:
                m = mrow[u]
                p = mats[m, 6]
                hsh = _hash(key, v, u)
                hole = False
                if p > 0.0:
                    hole = _blob(blobs, u, v, inv_cell) + 0.12 * (_uniform(hsh) - 0.5) < p
                if not hole and mats[m, 4] >= 0.5:
                    hole = crow[u] > 0.93  # saturated head-on reflection of the projector
                if not hole:
                    g = a_iid * _gauss(_mix(hsh ^ np.uint64(0x9E3779B97F4A7C15)))
                    if a_corr > 0.0:
                        g += a_corr * _smooth_gauss(smooth, u, v, inv_corr_cell)
                    d = d + sigma_px * g
                    d = math.floor(d * subpixel_steps + 0.5) / subpixel_steps
                    if d > 0:
                        zn = fb / d
                        if min_z <= zn <= max_z:
                            q = zn / depth_scale + 0.5
                            if q < 65535.0:
                                out = int(q)
            depth[v, u] = out


@njit(**_JIT)
def cast_lidar(cos_el, sin_el, az, toff, t0, base, mount_r, mount_t, params, pmats, mats,
               min_range, max_range, noise_m, key, rng, inten):
    """Spinning LiDAR: column j is cast at t0 + toff[j] from the rig pose at that time, with
    every primitive at its pose at that time. Outputs rng (metres along the unit ray, NaN for
    no return) and intensity (0-255: IR reflectivity x incidence). The first surface returns
    (glass included, weakly); dark surfaces drop out when the return is too weak."""
    nb = cos_el.shape[0]
    nc = az.shape[0]
    npr = params.shape[0]
    for j in range(nc):
        for i in range(nb):
            rng[i, j] = np.inf
            inten[i, j] = np.nan
    mrot = np.empty((npr, 3, 3))
    morg = np.empty((npr, 3))
    cen = np.empty((npr, 3))
    for j in range(nc):
        t = t0 + toff[j]
        bx, by, bz, byaw = base_state(base, t)
        cb = math.cos(byaw)
        sb = math.sin(byaw)
        # world<-lidar = world<-base @ base<-lidar
        rwl = np.empty((3, 3))
        for a in range(3):
            rwl[0, a] = cb * mount_r[0, a] - sb * mount_r[1, a]
            rwl[1, a] = sb * mount_r[0, a] + cb * mount_r[1, a]
            rwl[2, a] = mount_r[2, a]
        twx = bx + cb * mount_t[0] - sb * mount_t[1]
        twy = by + sb * mount_t[0] + cb * mount_t[1]
        twz = bz + mount_t[2]
        for p in range(npr):
            ox, oy, oz, oyaw = prim_state(params[p], t)
            co = math.cos(oyaw)
            so = math.sin(oyaw)
            # rows of R_wo^T
            for a in range(3):
                mrot[p, 0, a] = co * rwl[0, a] + so * rwl[1, a]
                mrot[p, 1, a] = -so * rwl[0, a] + co * rwl[1, a]
                mrot[p, 2, a] = rwl[2, a]
            qx = twx - ox
            qy = twy - oy
            qz = twz - oz
            morg[p, 0] = co * qx + so * qy
            morg[p, 1] = -so * qx + co * qy
            morg[p, 2] = qz
            # bounding-sphere centre in the lidar frame: R_wl^T (c_o - t_wl)
            for a in range(3):
                cen[p, a] = -(rwl[0, a] * qx + rwl[1, a] * qy + rwl[2, a] * qz)
        ca = math.cos(az[j])
        sa = math.sin(az[j])
        for p in range(npr):
            kind = int(params[p, 0])
            rad = params[p, 14]
            cx = cen[p, 0]
            cy = cen[p, 1]
            cz = cen[p, 2]
            el_c = 0.0
            half = 10.0
            if kind != ROOM:
                if abs(-sa * cx + ca * cy) > rad or ca * cx + sa * cy < -rad:
                    continue
                dist = math.sqrt(cx * cx + cy * cy + cz * cz)
                if dist > rad:
                    half = math.asin(rad / dist) + 1e-6
                    el_c = math.atan2(cz, math.sqrt(cx * cx + cy * cy))
            sx = params[p, 1]
            sy = params[p, 2]
            sz = params[p, 3]
            for i in range(nb):
                if half < 10.0 and abs(math.atan2(sin_el[i], cos_el[i]) - el_c) > half:
                    continue
                dx0 = cos_el[i] * ca
                dy0 = cos_el[i] * sa
                dz0 = sin_el[i]
                dx = mrot[p, 0, 0] * dx0 + mrot[p, 0, 1] * dy0 + mrot[p, 0, 2] * dz0
                dy = mrot[p, 1, 0] * dx0 + mrot[p, 1, 1] * dy0 + mrot[p, 1, 2] * dz0
                dz = mrot[p, 2, 0] * dx0 + mrot[p, 2, 1] * dy0 + mrot[p, 2, 2] * dz0
                tt, nx, ny, nz, face = intersect(kind, sx, sy, sz, morg[p, 0], morg[p, 1], morg[p, 2], dx, dy, dz)
                if tt < rng[i, j]:
                    rng[i, j] = tt
                    m = pmats[p, face]
                    c = abs(nx * dx + ny * dy + nz * dz)
                    refl = mats[m, 3]
                    inten[i, j] = min(255.0, 255.0 * refl * (0.2 + 0.8 * c))
                    # weak-return test (signal ~ reflectivity x cos / r^2) stored as a sign
                    if refl * c * 100.0 / max(tt * tt, 1.0) < 0.1:
                        inten[i, j] = -1.0
    for j in range(nc):
        for i in range(nb):
            r = rng[i, j]
            if r == np.inf or inten[i, j] < 0.0:
                rng[i, j] = np.nan
                inten[i, j] = np.nan
                continue
            if noise_m > 0.0:
                r += noise_m * _gauss(_hash(key, i, j))
            if r < min_range or r > max_range:
                rng[i, j] = np.nan
                inten[i, j] = np.nan
            else:
                rng[i, j] = r


@njit(**_JIT)
def surface_distance(pts, params, times):
    """|signed distance| from each world point to the nearest primitive surface, with the
    primitives where they are at each point's own time (times[k])."""
    n = pts.shape[0]
    out = np.empty(n)
    for k in range(n):
        best = np.inf
        for p in range(params.shape[0]):
            ox, oy, oz, oyaw = prim_state(params[p], times[k])
            co = math.cos(oyaw)
            so = math.sin(oyaw)
            qx = pts[k, 0] - ox
            qy = pts[k, 1] - oy
            qz = pts[k, 2] - oz
            x = co * qx + so * qy
            y = -so * qx + co * qy
            z = qz
            kind = int(params[p, 0])
            sx = params[p, 1]
            sy = params[p, 2]
            sz = params[p, 3]
            if kind == BOX or kind == ROOM:
                ax = abs(x) - sx
                ay = abs(y) - sy
                az = abs(z) - sz
                ex = max(ax, 0.0)
                ey = max(ay, 0.0)
                ez = max(az, 0.0)
                d = math.sqrt(ex * ex + ey * ey + ez * ez) + min(max(ax, max(ay, az)), 0.0)
            elif kind == SPHERE:
                d = math.sqrt(x * x + y * y + z * z) - sx
            else:
                a1 = math.sqrt(x * x + y * y) - sx
                a2 = abs(z) - sy
                e1 = max(a1, 0.0)
                e2 = max(a2, 0.0)
                d = min(max(a1, a2), 0.0) + math.sqrt(e1 * e1 + e2 * e2)
            best = min(best, abs(d))
        out[k] = best
    return out
