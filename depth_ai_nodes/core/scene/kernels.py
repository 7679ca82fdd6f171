"""numba kernels of the built-in scene: ray casting against analytic primitives and the sensor models.

Why this shape: camera rays are fixed in the camera frame, so per frame only the handful of
primitives is moved into the camera frame (in Python), and each primitive is intersected only
with the pixels inside its projected bounding rectangle (primitive-major, like a rasteriser).
LiDAR columns each have their own time, so poses are evaluated per column here, and
primitives are culled per column by their bounding sphere. Noise comes from a counter-based
hash of (seed, frame, pixel), so frames are deterministic, cheap and need no RNG state.
All kernels are single-threaded and compiled with cache=True (start-up stays fast).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

ROOM, BOX, SPHERE, CYLINDER = 0, 1, 2, 3
PRIM_COLS = 15  # kind, size(3), center(3), yaw, amplitude(3), omega, phase, yaw_rate, bounding radius
MAT_COLS = 9    # albedo(3), ir, specular, transparency, depth hole probability, texture id, texture scale
EPS = 1e-6

_JIT = dict(cache=True, nogil=True, error_model="numpy")


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
        tab[i, 8] = m.texture_scale
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


@njit(**_JIT)
def _blob(key, u, v, cell):
    """Smooth value noise in [0, 1) with features ~cell pixels: coherent hole blobs."""
    fu = u / cell
    fv = v / cell
    iu = int(fu)
    iv = int(fv)
    au = fu - iu
    av = fv - iv
    au = au * au * (3.0 - 2.0 * au)
    av = av * av * (3.0 - 2.0 * av)
    h00 = _uniform(_hash(key, iu, iv))
    h10 = _uniform(_hash(key, iu + 1, iv))
    h01 = _uniform(_hash(key, iu, iv + 1))
    h11 = _uniform(_hash(key, iu + 1, iv + 1))
    return (h00 * (1 - au) + h10 * au) * (1 - av) + (h01 * (1 - au) + h11 * au) * av


# ---------------------------------------------------------------------------- geometry
@njit(**_JIT)
def intersect(kind, sx, sy, sz, ox, oy, oz, dx, dy, dz):
    """Nearest hit t > EPS of the ray o + t d with a primitive in its local frame.
    Returns (t, nx, ny, nz, face) with the local normal facing the ray; t = inf for a miss."""
    inf = np.inf
    if kind == BOX or kind == ROOM:
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
        if kind == BOX:
            if tn < EPS:
                return inf, 0.0, 0.0, 0.0, 0  # origin inside a solid: not visible
            if tn == tnx:
                return tn, (1.0 if dx < 0 else -1.0), 0.0, 0.0, (1 if dx < 0 else 0)
            if tn == tny:
                return tn, 0.0, (1.0 if dy < 0 else -1.0), 0.0, (3 if dy < 0 else 2)
            return tn, 0.0, 0.0, (1.0 if dz < 0 else -1.0), (5 if dz < 0 else 4)
        # room: seen from inside, the exit face; the inward normal faces the ray
        if tf == tfx:
            return tf, (-1.0 if dx > 0 else 1.0), 0.0, 0.0, (1 if dx > 0 else 0)
        if tf == tfy:
            return tf, 0.0, (-1.0 if dy > 0 else 1.0), 0.0, (3 if dy > 0 else 2)
        return tf, 0.0, 0.0, (-1.0 if dz > 0 else 1.0), (5 if dz > 0 else 4)
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


@njit(**_JIT)
def texture(tex, scale, x, y, z):
    """Brightness factor of a procedural texture at an object-local point."""
    if tex == 0:
        return 1.0
    if tex == 1:  # checker
        k = int(math.floor(x / scale)) + int(math.floor(y / scale)) + int(math.floor(z / scale))
        return 1.0 if (k & 1) == 0 else 0.62
    if tex == 2:  # stripes along local x and z (wood grain, painted stripes)
        return 0.8 + 0.2 * math.sin(6.283185307 * (x + 0.5 * z) / scale)
    # tiles: random brightness per cell, with grout lines
    fx = x / scale
    fy = y / scale
    fz = z / scale
    ix = math.floor(fx)
    iy = math.floor(fy)
    iz = math.floor(fz)
    gx = fx - ix
    gy = fy - iy
    gz = fz - iz
    h = _uniform(_hash(np.uint64(77), int(ix) * 7919 + int(iy) * 104729, int(iz) + 4096))
    g = min(min(min(gx, 1 - gx), min(gy, 1 - gy)), min(gz, 1 - gz))
    return (0.75 + 0.25 * h) * (0.7 if g < 0.03 else 1.0)


@njit(**_JIT)
def cast_camera(rx, ry, rects, rot_oc, org_o, rot_co, params, pmats, mats,
                zo, mo, no, tex, zt, mt):
    """Cast the rays (rx, ry, 1) of a camera at one instant. Per primitive i: rot_oc[i] maps
    camera directions into its local frame, org_o[i] is the camera centre in its local frame,
    rot_co[i] maps local normals back; rects[i] = u0, v0, u1, v1 (exclusive) of pixels to test.
    Outputs per pixel: nearest opaque hit (depth zo along +z since rays have z = 1, material
    mo, camera-frame normal no, texture factor tex) and the nearest transparent hit nearer
    than it (zt, mt), inf / -1 where none."""
    h, w = rx.shape
    for v in range(h):
        for u in range(w):
            zo[v, u] = np.inf
            zt[v, u] = np.inf
            mo[v, u] = -1
            mt[v, u] = -1
    for i in range(params.shape[0]):
        kind = int(params[i, 0])
        sx = params[i, 1]
        sy = params[i, 2]
        sz = params[i, 3]
        r = rot_oc[i]
        ox = org_o[i, 0]
        oy = org_o[i, 1]
        oz = org_o[i, 2]
        for v in range(rects[i, 1], rects[i, 3]):
            for u in range(rects[i, 0], rects[i, 2]):
                x = rx[v, u]
                y = ry[v, u]
                dx = r[0, 0] * x + r[0, 1] * y + r[0, 2]
                dy = r[1, 0] * x + r[1, 1] * y + r[1, 2]
                dz = r[2, 0] * x + r[2, 1] * y + r[2, 2]
                t, nx, ny, nz, face = intersect(kind, sx, sy, sz, ox, oy, oz, dx, dy, dz)
                if t == np.inf:
                    continue
                m = pmats[i, face]
                if mats[m, 5] >= 0.5:
                    if t < zt[v, u]:
                        zt[v, u] = t
                        mt[v, u] = m
                elif t < zo[v, u]:
                    zo[v, u] = t
                    mo[v, u] = m
                    c = rot_co[i]
                    no[v, u, 0] = c[0, 0] * nx + c[0, 1] * ny + c[0, 2] * nz
                    no[v, u, 1] = c[1, 0] * nx + c[1, 1] * ny + c[1, 2] * nz
                    no[v, u, 2] = c[2, 0] * nx + c[2, 1] * ny + c[2, 2] * nz
                    tex[v, u] = texture(int(mats[m, 7]), mats[m, 8], ox + t * dx, oy + t * dy, oz + t * dz)


@njit(**_JIT)
def _lambert(x, y, z, n0, n1, n2, lx, ly, lz):
    ax = lx - x
    ay = ly - y
    az = lz - z
    inv = 1.0 / math.sqrt(ax * ax + ay * ay + az * az)
    return max(0.0, (n0 * ax + n1 * ay + n2 * az) * inv)


@njit(**_JIT)
def _specular(x, y, z, n0, n1, n2, lx, ly, lz, power):
    """Phong highlight of a point light seen from the camera at the origin."""
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
    return c ** power if c > 0 else 0.0


@njit(**_JIT)
def shade_color(rx, ry, zo, mo, no, tex, zt, mt, mats, light, key, noise, out):
    """rgb8 from the colour camera's cast: albedo x texture x (ambient + Lambert of a point
    light), Phong highlights on shiny materials, glass blended over what is behind it."""
    h, w = rx.shape
    lx = light[0]
    ly = light[1]
    lz = light[2]
    for v in range(h):
        for u in range(w):
            x = rx[v, u]
            y = ry[v, u]
            r = 0.0
            g = 0.0
            b = 0.0
            m = mo[v, u]
            if m >= 0:
                z = zo[v, u]
                px = x * z
                py = y * z
                n0 = no[v, u, 0]
                n1 = no[v, u, 1]
                n2 = no[v, u, 2]
                lam = _lambert(px, py, z, n0, n1, n2, lx, ly, lz)
                k = tex[v, u] * (0.35 + 0.65 * lam)
                r = mats[m, 0] * k
                g = mats[m, 1] * k
                b = mats[m, 2] * k
                sp = mats[m, 4]
                if sp > 0.0:
                    s = sp * _specular(px, py, z, n0, n1, n2, lx, ly, lz, 24.0)
                    r = r * (1 - 0.5 * sp) + s
                    g = g * (1 - 0.5 * sp) + s
                    b = b * (1 - 0.5 * sp) + s
            m2 = mt[v, u]
            if m2 >= 0 and zt[v, u] < zo[v, u]:
                a = mats[m2, 5]
                r = a * r + (1 - a) * mats[m2, 0]
                g = a * g + (1 - a) * mats[m2, 1]
                b = a * b + (1 - a) * mats[m2, 2]
            hsh = _hash(key, v, u)
            r = r * 255.0 + noise * (_uniform(hsh) - 0.5)
            g = g * 255.0 + noise * (float((hsh >> np.uint64(20)) & np.uint64(0xFFFFF)) / 1048576.0 - 0.5)
            b = b * 255.0 + noise * (float((hsh >> np.uint64(40)) & np.uint64(0xFFFFF)) / 1048576.0 - 0.5)
            out[v, u, 0] = np.uint8(min(255.0, max(0.0, r + 0.5)))
            out[v, u, 1] = np.uint8(min(255.0, max(0.0, g + 0.5)))
            out[v, u, 2] = np.uint8(min(255.0, max(0.0, b + 0.5)))


@njit(**_JIT)
def depth_ir(rx, ry, zo, mo, no, tex, zt, mt, mats, fx, baseline, sigma_px, subpixel_steps,
             min_z, max_z, depth_scale, key, blob_cell, emitter, dots, dfx, dcx, dcy, emitter_on,
             light, ir_noise, gt, depth, ir, zrow):
    """The depth imager model (active stereo, depth in the left imager = infra1 optical frame):
    gt (exact first surface, glass included; NaN where none); depth (uint16 in depth_scale
    units) of the surface the stereo matcher sees (behind glass unless a hole) with disparity
    noise sigma_px (sigma_z = z^2 sigma_px / (fx B)) quantised to 1/subpixel_steps px, holes
    where the material's probability says (coherent blobs; dark, shiny, glass), on shiny
    surfaces seen head-on (saturation), in the right imager's occlusion shadow (left of near
    objects), and outside [min_z, max_z]; ir (mono8) of the left imager: reflectivity-shaded
    surfaces plus the projector's dots, fixed in the emitter frame."""
    h, w = rx.shape
    fb = fx * baseline
    for v in range(h):
        # pass 1: first surface (gt), the surface the matcher sees, and the IR image
        for u in range(w):
            x = rx[v, u]
            y = ry[v, u]
            z0 = zo[v, u]
            z1 = zt[v, u]
            zf = min(z0, z1)
            gt[v, u] = zf if zf < np.inf else np.nan
            m = mo[v, u]
            seen = z0
            val = 0.0
            if m >= 0:
                pz = z0
                px = x * pz
                py = y * pz
                refl = mats[m, 3] * (0.85 + 0.15 * tex[v, u])
                lam = _lambert(px, py, pz, no[v, u, 0], no[v, u, 1], no[v, u, 2], light[0], light[1], light[2])
                val = refl * (0.2 + 0.15 * lam)
                if emitter_on:
                    ex = px - emitter[0]
                    ey = py - emitter[1]
                    ez = pz - emitter[2]
                    iu = int(dfx * ex / ez + dcx + 0.5)
                    iv = int(dfx * ey / ez + dcy + 0.5)
                    if 0 <= iu < dots.shape[1] and 0 <= iv < dots.shape[0]:
                        fall = min(1.0, 1.5 / (pz * pz))
                        val += refl * dots[iv, iu] * (0.35 + 0.65 * fall)
                sp = mats[m, 4]
                if sp > 0.0:
                    c = -(x * no[v, u, 0] + y * no[v, u, 1] + no[v, u, 2]) / math.sqrt(x * x + y * y + 1.0)
                    if c > 0:
                        val += sp * c ** 40
            m2 = mt[v, u]
            if m2 >= 0 and z1 < z0:
                a = mats[m2, 5]
                val = val * a + (1 - a) * mats[m2, 3] * 0.5
                hb = _uniform(_hash(key, v + 7 * h, u))
                if _blob(key + np.uint64(1), float(u), float(v), blob_cell) + 0.12 * (hb - 0.5) < mats[m2, 6]:
                    seen = np.inf  # the matcher fails on the pane: hole
                # else it matches the texture behind the glass
            val = val * 255.0 + ir_noise * _gauss(_hash(key, v + 3 * h, u))
            ir[v, u] = np.uint8(min(255.0, max(0.0, val + 0.5)))
            zrow[u] = seen if m >= 0 else np.inf
        # pass 2: shadow of the right imager (baseline along +x): a point is hidden from it
        # when a point to its right projects at or left of it in the right image
        lowest = np.inf
        for u in range(w - 1, -1, -1):
            z = zrow[u]
            if z == np.inf:
                continue
            ur = u - fb / z
            if ur > lowest + 0.5:
                zrow[u] = -1.0  # occluded: hole
            elif ur < lowest:
                lowest = ur
        # pass 3: holes by material, range limits, disparity noise, quantisation
        for u in range(w):
            z = zrow[u]
            out = 0
            if z > 0.0 and z < np.inf:
                m = mo[v, u]
                hb = _uniform(_hash(key, v, u))
                hole = _blob(key, float(u), float(v), blob_cell) + 0.12 * (hb - 0.5) < mats[m, 6]
                sp = mats[m, 4]
                if not hole and sp >= 0.5:
                    x = rx[v, u]
                    y = ry[v, u]
                    c = -(x * no[v, u, 0] + y * no[v, u, 1] + no[v, u, 2]) / math.sqrt(x * x + y * y + 1.0)
                    hole = c > 0.93  # saturated head-on reflection of the projector
                if not hole:
                    d = fb / z + sigma_px * _gauss(_hash(key, v + h, u))
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
def surface_distance(pts, params, t):
    """|signed distance| from each world point to the nearest primitive surface at time t."""
    n = pts.shape[0]
    out = np.empty(n)
    for k in range(n):
        best = np.inf
        for p in range(params.shape[0]):
            ox, oy, oz, oyaw = prim_state(params[p], t)
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
