"""A RealSense-D435-like camera rig in the built-in world, and its renderer.

Frames (REP-103/105, realsense-ros names): camera_link (x forward, y left, z up) is mounted on
base_link; the depth and infra1 streams share camera_depth_optical_frame /
camera_infra1_optical_frame (the left imager, z forward, x right, y down); the colour camera
sits 15 mm to the left of it (camera_link +y, i.e. -x of the depth optical frame, as on a
D435: depth_to_color translates by about +15 mm in x) with a tiny rotation; the right imager is
50 mm to the right (+x of the depth optical frame), which is where the occlusion shadow comes from.
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..camera_model import CameraModel
from ..transforms import RigidTransform
from . import kernels as K
from .world import ROOM, World

DEPTH_FRAME = "camera_depth_optical_frame"
IR_FRAME = "camera_infra1_optical_frame"
COLOR_FRAME = "camera_color_optical_frame"
LINK_FRAME = "camera_link"

# camera_link <- optical: optical z = link x, optical x = -link y, optical y = -link z
OPTICAL_IN_LINK = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def _rot(axis: tuple[float, float, float], angle: float) -> np.ndarray:
    """Rodrigues rotation matrix."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    kx = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def _matrix(r: np.ndarray, t) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = t
    return m


def _as_matrix(tf) -> np.ndarray:
    return np.asarray(tf.matrix() if hasattr(tf, "matrix") else tf, dtype=np.float64)


@dataclass
class CameraRig:
    """Calibration of the synthetic D435. Focal lengths follow the D435's modes: 4:3 modes scale
    from 640x480 (depth fx 385, colour fx 615), wide modes (aspect >= 1.6) from 1280x720
    (depth fx 640, colour fx 920), e.g. 848x480 depth gets fx 424 as on the real camera;
    principal point at the centre; no distortion (as D435 depth reports)."""

    width: int = 640
    height: int = 480
    fps: float = 30.0
    color_width: int | None = None
    color_height: int | None = None
    depth_fx_640: float = 385.0
    color_fx_640: float = 615.0
    baseline_m: float = 0.050
    depth_scale: float = 0.001
    color_offset_m: float = 0.015
    # base_link <- camera_link: 0.2 m ahead, 0.45 m up, pitched 8 degrees down
    mount: np.ndarray = field(default_factory=lambda: _matrix(_rot((0, 1, 0), np.radians(8.0)), (0.2, 0.0, 0.45)))

    def __post_init__(self) -> None:
        for name in ("width", "height", "color_width", "color_height"):
            v = getattr(self, name)
            if v is not None and (int(v) != v or not 8 <= v <= 8192):
                raise ValueError(f"CameraRig.{name} must be an integer in [8, 8192], got {v!r}")
        if not 0 < self.fps <= 1000:
            raise ValueError(f"CameraRig.fps must be in (0, 1000], got {self.fps!r}")
        if self.baseline_m <= 0 or self.depth_scale <= 0:
            raise ValueError("CameraRig.baseline_m and depth_scale must be > 0")
        self.width, self.height = int(self.width), int(self.height)
        self.color_width = self.color_width or self.width
        self.color_height = self.color_height or self.height
        self.mount = _as_matrix(self.mount)
        self.depth_model = self._model(self.width, self.height, self.depth_fx_640, 640.0, DEPTH_FRAME)
        self.ir_model = self._model(self.width, self.height, self.depth_fx_640, 640.0, IR_FRAME)
        self.color_model = self._model(self.color_width, self.color_height, self.color_fx_640, 920.0, COLOR_FRAME)
        # colour <- depth: a tiny rotation, and the colour centre at -offset x in the depth frame
        r = _rot((0.3, 1.0, 0.2), np.radians(0.25))
        centre = np.array([-self.color_offset_m, 0.0004, 0.0002])
        self._depth_to_color = _matrix(r, -r @ centre)
        self.depth_to_color = RigidTransform.from_matrix(self._depth_to_color)
        self.depth_to_ir = RigidTransform.from_matrix(np.eye(4))
        # base_link <- optical frames
        self._base_from_depth = self.mount @ _matrix(OPTICAL_IN_LINK, (0.0, 0.0, 0.0))
        self._base_from_color = self._base_from_depth @ np.linalg.inv(self._depth_to_color)

    @staticmethod
    def _model(w: int, h: int, fx640: float, fx1280_wide: float, frame: str) -> CameraModel:
        f = fx1280_wide * w / 1280.0 if w / h >= 1.6 else fx640 * w / 640.0
        k = np.array([[f, 0.0, (w - 1) / 2.0], [0.0, f, (h - 1) / 2.0], [0.0, 0.0, 1.0]])
        return CameraModel(width=w, height=h, K=k, D=np.zeros(5), distortion_model="plumb_bob", frame_id=frame)

    # REP-105 transforms, for static TF and the extrinsics topics
    @property
    def camera_link_in_base(self) -> RigidTransform:
        """base_link <- camera_link."""
        return RigidTransform.from_matrix(self.mount)

    @property
    def depth_optical_in_camera_link(self) -> RigidTransform:
        """camera_link <- camera_depth_optical_frame (= camera_infra1_optical_frame)."""
        return RigidTransform.from_matrix(_matrix(OPTICAL_IN_LINK, (0.0, 0.0, 0.0)))

    @property
    def color_optical_in_camera_link(self) -> RigidTransform:
        """camera_link <- camera_color_optical_frame."""
        return RigidTransform.from_matrix(_matrix(OPTICAL_IN_LINK, (0, 0, 0)) @ np.linalg.inv(self._depth_to_color))

    @property
    def depth_in_base(self) -> RigidTransform:
        """base_link <- camera_depth_optical_frame."""
        return RigidTransform.from_matrix(self._base_from_depth)

    @property
    def color_in_base(self) -> RigidTransform:
        """base_link <- camera_color_optical_frame."""
        return RigidTransform.from_matrix(self._base_from_color)


@dataclass
class CameraFrame:
    """One synchronized frameset (global shutter, all streams at t).

    color: (H, W, 3) uint8 rgb8 in the colour optical frame; ir: (H, W) uint8 mono8 of the
    infra1 imager (= depth geometry); depth_mm: (H, W) uint16 in depth_scale units (mm), 0 =
    no data (REP-118); gt_depth_m: (H, W) float32 exact z of the first surface (glass
    included), NaN where none; world_from_depth / world_from_color: 4x4 world <- optical frame
    at t; material_id (only with render(labels=True)): (H, W) int16 index into
    world.material_names of the first surface in the depth frame, -1 where none;
    gt_color_depth_m: (Hc, Wc) float32 exact z of the first surface in the colour optical frame
    (ground truth already registered to colour, e.g. for RGB-D training and evaluation)."""

    t: float
    frame_index: int
    color: np.ndarray
    ir: np.ndarray
    depth_mm: np.ndarray
    gt_depth_m: np.ndarray
    world_from_depth: np.ndarray
    world_from_color: np.ndarray
    material_id: np.ndarray | None = None
    gt_color_depth_m: np.ndarray | None = None


@dataclass
class DepthSensorModel:
    """Active-stereo depth error model (RealSense-like). sigma_z ~ z^2 * subpixel_sigma / (fx B):
    at 640x480 (fx 385, B 50 mm) ~1.1 % at 2 m, ~2.1 % at 4 m."""

    subpixel_sigma: float = 0.08      # disparity noise, pixels
    subpixel_steps: int = 32          # disparity quantisation 1/32 px
    min_z_m: float = 0.2
    max_z_m: float = 7.0
    noise_correlation: float = 0.5    # share of the disparity noise variance that is spatially smooth
    noise_cell_px: float = 4.0        # its correlation length, pixels (a block matcher's window)
    hole_blob_px: float = 10.0        # size of coherent hole blobs, pixels
    ir_noise: float = 1.5             # IR sensor noise, grey levels (sigma)
    color_noise: float = 4.0          # colour noise, grey levels (peak to peak)
    emitter_on: bool = True
    emitter_x_m: float = 0.025        # projector position along +x of the depth optical frame
    dot_density: float = 0.02         # projector dots per projector pixel
    light_world: tuple[float, float, float] = (3.0, 0.5, 2.7)  # the room light (colour shading)

    def __post_init__(self) -> None:
        if not 0.0 < self.min_z_m < self.max_z_m:
            raise ValueError(f"DepthSensorModel needs 0 < min_z_m < max_z_m, got {self.min_z_m}, {self.max_z_m}")
        if self.subpixel_sigma < 0 or self.subpixel_steps < 1 or not 0.0 <= self.noise_correlation <= 1.0:
            raise ValueError("DepthSensorModel: subpixel_sigma >= 0, subpixel_steps >= 1, "
                             "noise_correlation in [0, 1]")
        if self.hole_blob_px <= 0 or self.noise_cell_px <= 0:
            raise ValueError("DepthSensorModel: hole_blob_px and noise_cell_px must be > 0")


def _bands(h: int, n: int) -> list[tuple[int, int]]:
    """n contiguous row ranges covering 0..h."""
    edges = np.linspace(0, h, n + 1).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


class SyntheticCamera:
    """Renders color, IR (with projector dots), sensor depth and ground-truth depth of a world.

    render(t) is deterministic in (seed, frame_index), frame_index defaulting to round(t * fps).
    The returned arrays are fresh (safe to keep or publish)."""

    def __init__(self, world: World, rig: CameraRig | None = None, seed: int = 0,
                 sensor: DepthSensorModel | None = None, parallel: bool | int = False) -> None:
        self.world = world
        # parallel: bands of rows rendered by threads (the kernels release the GIL) with results
        # identical to one thread; the default leaves the other cores to the node
        # (parallel=True: one band per core, up to 8; an int: that many bands and threads)
        self._threads = max(1, int(parallel)) if not isinstance(parallel, bool) else min(os.cpu_count() or 1, 8)
        self._pool = ThreadPoolExecutor(self._threads, "scene") if parallel else None
        self._ahead: ThreadPoolExecutor | None = None
        self.rig = rig or CameraRig()
        self.seed = int(seed)
        self.sensor = sensor or DepthSensorModel()
        self._depth_rays = self._rays(self.rig.depth_model)
        self._color_rays = self._rays(self.rig.color_model)
        h, w = self.rig.height, self.rig.width
        self._dots = self._dot_pattern(np.random.default_rng([self.seed, 991]), h, w)
        self._radius = np.array([p.bounding_radius() for p in world.primitives])
        self._half = np.array([p.half_extents() for p in world.primitives], dtype=np.float64)
        self._is_room = np.array([p.kind == ROOM for p in world.primitives])

    @staticmethod
    def _rays(model: CameraModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-pixel normalized ray (x/z, y/z) and 1/|(x, y, 1)| (fixed in the camera frame)."""
        g = np.asarray(model.ray_grid(), dtype=np.float64)
        rn = 1.0 / np.sqrt(g[..., 0] ** 2 + g[..., 1] ** 2 + 1.0)
        return tuple(np.ascontiguousarray(a, dtype=np.float32) for a in (g[..., 0], g[..., 1], rn))

    def _dot_pattern(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        """The projector's pseudo-random dot pattern, in the projector's own image (1.5x the
        imager's field of view so dots cover it at any depth); dots are soft 3x3 blobs."""
        ph, pw = int(1.5 * h) + 4, int(1.5 * w) + 4
        dots = np.zeros((ph, pw), dtype=np.float32)
        n = int(self.sensor.dot_density * ph * pw)
        ys = rng.integers(1, ph - 1, n)
        xs = rng.integers(1, pw - 1, n)
        amp = rng.uniform(0.5, 1.0, n)
        for dy, dx, k in ((0, 0, 1.0), (-1, 0, 0.4), (1, 0, 0.4), (0, -1, 0.4), (0, 1, 0.4)):
            np.maximum.at(dots, (ys + dy, xs + dx), (amp * k).astype(np.float32))
        return dots

    def _key(self, frame_index: int, stream: int) -> np.uint64:
        x = (self.seed * 0x9E3779B1 + frame_index * 0x85EBCA77 + stream * 0xC2B2AE3D) & 0xFFFFFFFFFFFFFFFF
        return np.uint64(x)

    def _geometry(self, world_from_cam: np.ndarray, model: CameraModel, t: float) -> tuple:
        """Per-frame primitive data for the kernels: near-to-far order (room last), pixel
        rectangles, rotations object<-camera and back, the camera centre in each object frame
        and each primitive's nearest possible depth (early out)."""
        w = self.world
        n = len(w.primitives)
        cam_from_world = np.linalg.inv(world_from_cam)
        rot_co = np.empty((n, 3, 3))
        org_o = np.empty((n, 3))
        centres = np.empty((n, 3))
        for i in range(n):
            m = cam_from_world @ w.primitive_pose_matrix(i, t)
            rot_co[i] = m[:3, :3]
            centres[i] = m[:3, 3]
            org_o[i] = -m[:3, :3].T @ m[:3, 3]
        rot_oc = np.ascontiguousarray(rot_co.transpose(0, 2, 1))
        rects = self._rects(model, rot_co, centres, self._half, self._radius, self._is_room)
        zmin = centres[:, 2] - self._radius
        zmin[self._is_room] = -np.inf
        order = np.argsort(np.where(self._is_room, np.inf, zmin), kind="stable").astype(np.int64)
        return order, rects, rot_oc, org_o, rot_co, zmin

    @staticmethod
    def _rects(model: CameraModel, rot_co: np.ndarray, centres: np.ndarray, half: np.ndarray,
               radius: np.ndarray, full: np.ndarray) -> np.ndarray:
        """Pixel rectangle (u0, v0, u1, v1), end exclusive, holding each primitive: the
        projection of its oriented bounding box corners, padded; the whole image when it
        reaches behind the camera (or for the room), empty when entirely behind."""
        n = len(centres)
        rects = np.zeros((n, 4), dtype=np.int64)
        rects[:] = (0, 0, model.width, model.height)
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        corners = centres[:, None, :] + np.einsum("nij,nkj->nki", rot_co, half[:, None, :] * signs[None])
        front = (~full) & (corners[:, :, 2].min(axis=1) > 0.02)
        if front.any():
            uv = np.asarray(model.project(corners[front].reshape(-1, 3)), dtype=np.float64).reshape(-1, 8, 2)
            lo = np.floor(uv.min(axis=1)) - 2
            hi = np.ceil(uv.max(axis=1)) + 3
            r = np.stack([lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1]], axis=1)
            r[:, [0, 2]] = np.clip(r[:, [0, 2]], 0, model.width)
            r[:, [1, 3]] = np.clip(r[:, [1, 3]], 0, model.height)
            rects[front] = r.astype(np.int64)
        behind = (~full) & (centres[:, 2] + radius < 0.0)
        rects[behind] = 0
        return rects

    def render(self, t: float, frame_index: int | None = None, labels: bool = False) -> CameraFrame:
        """All streams at scene time t (seconds)."""
        rig, s = self.rig, self.sensor
        fi = int(round(t * rig.fps)) if frame_index is None else int(frame_index)
        base = self.world.base_pose_matrix(t)
        w_depth = base @ rig._base_from_depth
        w_color = base @ rig._base_from_color
        light = np.append(np.asarray(s.light_world, dtype=np.float64), 1.0)
        wd = self.world

        color = np.empty((rig.color_height, rig.color_width, 3), dtype=np.uint8)
        gt_color = np.empty((rig.color_height, rig.color_width), dtype=np.float32)
        color_args = (*self._color_rays[:2], *self._geometry(w_color, rig.color_model, t), wd.prim_params,
                      wd.prim_materials, wd.material_table, (np.linalg.inv(w_color) @ light)[:3],
                      self._key(fi, 1), s.color_noise, color, gt_color)

        h, w = rig.height, rig.width
        gt = np.empty((h, w), dtype=np.float32)
        depth = np.empty((h, w), dtype=np.uint16)
        ir = np.empty((h, w), dtype=np.uint8)
        lab = np.empty((h, w) if labels else (0, 0), dtype=np.int16)
        fx = float(rig.depth_model.fx)
        ph, pw = self._dots.shape
        depth_args = (*self._depth_rays, *self._geometry(w_depth, rig.depth_model, t), wd.prim_params,
                      wd.prim_materials, wd.material_table, fx, rig.baseline_m, s.subpixel_sigma,
                      float(s.subpixel_steps), s.min_z_m, s.max_z_m, rig.depth_scale, self._key(fi, 2),
                      s.hole_blob_px, np.array([s.emitter_x_m, 0.0, 0.0]), self._dots, fx, (pw - 1) / 2.0,
                      (ph - 1) / 2.0, s.emitter_on, s.ir_noise, s.noise_correlation, s.noise_cell_px,
                      gt, depth, ir, lab)
        if self._pool is None:
            K.render_color(*color_args, 0, rig.color_height)
            K.render_depth_ir(*depth_args, 0, h)
        else:
            n = self._threads
            jobs = [self._pool.submit(K.render_color, *color_args, a, b) for a, b in _bands(rig.color_height, n)]
            jobs += [self._pool.submit(K.render_depth_ir, *depth_args, a, b) for a, b in _bands(h, n)]
            for j in jobs:
                j.result()
        return CameraFrame(float(t), fi, color, ir, depth, gt, w_depth, w_color, lab if labels else None, gt_color)

    def render_async(self, t: float, frame_index: int | None = None, labels: bool = False) -> Future:
        """render() on a background thread, returning a Future of the CameraFrame. The kernels
        release the GIL, so a node can render frame k+1 while it converts and publishes frame k
        (two cores busy instead of one). Frames are identical to render()'s."""
        if self._ahead is None:
            self._ahead = ThreadPoolExecutor(1, "scene-ahead")
        return self._ahead.submit(self.render, t, frame_index, labels)

    # -- helpers for tests of other nodes -------------------------------------------
    def ir_at(self, frame: CameraFrame, points_ir_optical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rendered IR value at the pixel where each point (in the infra1 optical frame)
        projects: nearest pixel centre (ROS convention: pixel (u, v) centred at integer u, v),
        i.e. ir[int(v + 0.5), int(u + 0.5)]. Returns (values float32 with NaN outside, uv)."""
        pts = np.asarray(points_ir_optical, dtype=np.float64).reshape(-1, 3)
        out = np.full(len(pts), np.nan, dtype=np.float32)
        uv = np.full((len(pts), 2), np.nan)
        front = pts[:, 2] > 0
        if front.any():
            uv[front] = np.asarray(self.rig.ir_model.project(pts[front]), dtype=np.float64).reshape(-1, 2)
        ok = front & np.isfinite(uv).all(axis=1)
        ok[ok] = ((uv[ok] > -0.5) & (uv[ok] < [self.rig.width - 0.5, self.rig.height - 0.5])).all(axis=1)
        iu = np.floor(uv[ok, 0] + 0.5).astype(np.int64)
        iv = np.floor(uv[ok, 1] + 0.5).astype(np.int64)
        out[ok] = frame.ir[iv, iu]
        return out, uv
