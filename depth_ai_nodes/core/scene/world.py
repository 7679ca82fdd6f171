"""The built-in world: analytic primitives with materials, some moving, and a moving robot base.

Everything is deterministic in (seed, t). Poses are planar (a yaw about world +z plus a
translation) because that is what a ground robot and its surroundings do, and it keeps the
per-ray and per-LiDAR-column pose evaluation cheap enough to run inside the numba kernels.
Frames follow REP-103: world and base_link are x forward, y left, z up.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..transforms import RigidTransform
from . import kernels as K

# Primitive kinds, as the kernels know them.
ROOM, BOX, SPHERE, CYLINDER = K.ROOM, K.BOX, K.SPHERE, K.CYLINDER
# Face order of boxes and rooms: -x, +x, -y, +y, -z, +z (a room's -z face is its floor).
FACES = ("-x", "+x", "-y", "+y", "-z", "+z")
TEXTURES = {"none": 0, "checker": 1, "stripes": 2, "tiles": 3}


@dataclass(frozen=True)
class Material:
    """Surface appearance for the colour camera, the IR camera/projector and the LiDAR.

    albedo: linear RGB in [0, 1]. ir_reflectivity: in [0, 1] at the ~850 nm of the projector and
    the LiDAR (dark materials are low here, so depth has holes and the LiDAR returns weak or
    none). specular: [0, 1] mirror-like share; shiny surfaces saturate the IR imagers, so depth
    has holes there. transparency: [0, 1]; a transparent surface is the first surface (ground
    truth) but the depth sensor mostly sees through it or returns a hole. hole_prob: extra
    chance of a depth hole (coherent blobs) on this material. texture: 'none', 'checker',
    'stripes' or 'tiles', with texture_scale in metres (object-local, so it moves with objects).
    """

    name: str
    albedo: tuple[float, float, float] = (0.6, 0.6, 0.6)
    ir_reflectivity: float = 0.6
    specular: float = 0.0
    transparency: float = 0.0
    hole_prob: float = 0.0
    texture: str = "none"
    texture_scale: float = 0.5

    def __post_init__(self) -> None:
        if self.texture not in TEXTURES:
            raise ValueError(f"material {self.name!r}: texture {self.texture!r} is not one of {sorted(TEXTURES)}")
        if self.texture_scale <= 0:
            raise ValueError(f"material {self.name!r}: texture_scale must be > 0")
        for k in ("ir_reflectivity", "specular", "transparency", "hole_prob"):
            if not 0.0 <= getattr(self, k) <= 1.0:
                raise ValueError(f"material {self.name!r}: {k} must be in [0, 1]")

    @property
    def is_dark(self) -> bool:
        return self.ir_reflectivity < 0.15

    @property
    def is_shiny(self) -> bool:
        return self.specular >= 0.5

    @property
    def is_transparent(self) -> bool:
        return self.transparency >= 0.5


@dataclass(frozen=True)
class Primitive:
    """An analytic solid. size: box/room half extents (x, y, z); sphere (r, -, -); cylinder
    (r, half height, -) with its axis along local z. Pose at t: position
    center + amplitude * sin(omega t + phase), yaw = yaw + yaw_rate * t (about world z).
    materials: one name, or six (one per face in FACES order; cylinders use -z/+z for caps).
    """

    name: str
    kind: int
    size: tuple[float, float, float]
    center: tuple[float, float, float]
    materials: tuple[str, ...]
    yaw: float = 0.0
    amplitude: tuple[float, float, float] = (0.0, 0.0, 0.0)
    omega: float = 0.0
    phase: float = 0.0
    yaw_rate: float = 0.0

    @property
    def moving(self) -> bool:
        return (self.omega != 0.0 and any(a != 0.0 for a in self.amplitude)) or self.yaw_rate != 0.0

    def half_extents(self) -> tuple[float, float, float]:
        """Half extents of the local axis-aligned bounding box."""
        sx, sy, sz = self.size
        if self.kind in (BOX, ROOM):
            return (sx, sy, sz)
        if self.kind == SPHERE:
            return (sx, sx, sx)
        return (sx, sx, sy)

    def bounding_radius(self) -> float:
        sx, sy, sz = self.size
        if self.kind in (BOX, ROOM):
            return float(np.sqrt(sx * sx + sy * sy + sz * sz))
        if self.kind == SPHERE:
            return float(sx)
        return float(np.sqrt(sx * sx + sy * sy))  # cylinder: r, half height


@dataclass(frozen=True)
class BaseTrajectory:
    """Planar robot motion: x, y, yaw each a constant plus a sine (smooth, analytic twist)."""

    x: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 0.0)       # offset, amplitude, omega, phase
    y: tuple[float, float, float, float] = (0.0, 0.5, 0.31, 0.0)
    yaw: tuple[float, float, float, float] = (0.0, 0.3, 1.0, 0.0)
    z: float = 0.0

    def params(self) -> np.ndarray:
        return np.array([*self.x, *self.y, *self.yaw, self.z], dtype=np.float64)


def _yaw_pose(x: float, y: float, z: float, yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    m = np.eye(4)
    m[:2, :2] = [[c, -s], [s, c]]
    m[:3, 3] = (x, y, z)
    return m


@dataclass
class World:
    """Primitives + materials + the robot base trajectory. Use World.default(seed)."""

    primitives: list[Primitive]
    materials: dict[str, Material]
    trajectory: BaseTrajectory = field(default_factory=BaseTrajectory)
    seed: int = 0

    def __post_init__(self) -> None:
        names = list(self.materials)
        self.material_names: list[str] = names
        idx = {n: i for i, n in enumerate(names)}
        for p in self.primitives:
            for m in p.materials:
                if m not in idx:
                    raise ValueError(f"primitive {p.name!r} uses unknown material {m!r}")
        self.material_table = K.material_table([self.materials[n] for n in names], TEXTURES)
        n = len(self.primitives)
        self.prim_params = np.zeros((n, K.PRIM_COLS), dtype=np.float64)
        self.prim_materials = np.zeros((n, 6), dtype=np.int32)
        for i, p in enumerate(self.primitives):
            self.prim_params[i] = K.prim_row(p.kind, p.size, p.center, p.yaw, p.amplitude, p.omega,
                                             p.phase, p.yaw_rate, p.bounding_radius())
            mats = p.materials if len(p.materials) == 6 else p.materials[:1] * 6
            self.prim_materials[i] = [idx[m] for m in mats]
        self.base_params = self.trajectory.params()

    # -- robot base -------------------------------------------------------------------
    def base_pose_matrix(self, t: float) -> np.ndarray:
        """4x4 world<-base_link at time t (seconds of scene time)."""
        x, y, z, yaw = K.base_state(self.base_params, float(t))
        return _yaw_pose(x, y, z, yaw)

    def base_pose(self, t: float) -> RigidTransform:
        """world<-base_link at t: maps points in base_link to the world frame."""
        return RigidTransform.from_matrix(self.base_pose_matrix(t))

    def base_twist(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(linear m/s, angular rad/s) of base_link at t, both expressed in base_link
        (the twist of a nav_msgs/Odometry whose child_frame_id is base_link)."""
        vx, vy, wz = K.base_velocity_world(self.base_params, float(t))
        _, _, _, yaw = K.base_state(self.base_params, float(t))
        c, s = np.cos(yaw), np.sin(yaw)
        lin = np.array([c * vx + s * vy, -s * vx + c * vy, 0.0])
        return lin, np.array([0.0, 0.0, wz])

    # -- objects --------------------------------------------------------------------
    def primitive_pose_matrix(self, i: int | str, t: float) -> np.ndarray:
        """4x4 world<-object of primitive i (index or name) at t."""
        if isinstance(i, str):
            i = [p.name for p in self.primitives].index(i)
        x, y, z, yaw = K.prim_state(self.prim_params[i], float(t))
        return _yaw_pose(x, y, z, yaw)

    def surface_distance(self, points_world: np.ndarray, t: float | np.ndarray) -> np.ndarray:
        """Distance of each world point to the nearest primitive surface at time t (one time,
        or one per point), for tests: rendered points must lie on surfaces."""
        pts = np.ascontiguousarray(points_world, dtype=np.float64).reshape(-1, 3)
        times = np.broadcast_to(np.asarray(t, dtype=np.float64), (len(pts),)).copy()
        return K.surface_distance(pts, self.prim_params, times)

    def material_index(self, name: str) -> int:
        """Index of a material in material_names (the values of CameraFrame.material_id)."""
        return self.material_names.index(name)

    def static(self, t: float = 0.0) -> "World":
        """A copy frozen at time t: the robot and every object stay where they are at t.
        Handy for tests that compare sensors read at different times."""
        prims = []
        for i, p in enumerate(self.primitives):
            x, y, z, yaw = K.prim_state(self.prim_params[i], float(t))
            prims.append(replace(p, center=(x, y, z), yaw=yaw, amplitude=(0.0, 0.0, 0.0), omega=0.0,
                                 phase=0.0, yaw_rate=0.0))
        x, y, z, yaw = K.base_state(self.base_params, float(t))
        traj = BaseTrajectory(x=(x, 0.0, 0.0, 0.0), y=(y, 0.0, 0.0, 0.0), yaw=(yaw, 0.0, 0.0, 0.0), z=z)
        return World(prims, dict(self.materials), traj, self.seed)

    # -- the default scene ------------------------------------------------------------
    @classmethod
    def default(cls, seed: int = 0) -> "World":
        """An indoor room ~10.6 x 6.4 x 3 m seen from a robot near its -x end (0.5-8.5 m deep):
        a textured floor, walls and ceiling; a table-like box; a dark (low IR) box; a shiny
        metal sphere that slides sideways; a glass pane; a pillar; a turning crate; a close
        box near 0.6 m that moves in and out. Positions and colours jitter with seed."""
        rng = np.random.default_rng(seed)

        def j(scale: float) -> float:
            return float(rng.uniform(-scale, scale))

        def col(base: tuple[float, float, float]) -> tuple[float, float, float]:
            return tuple(float(np.clip(c + rng.uniform(-0.06, 0.06), 0.0, 1.0)) for c in base)

        mats = [
            Material("floor", col((0.55, 0.5, 0.45)), 0.55, texture="checker", texture_scale=0.5),
            Material("wall", col((0.82, 0.8, 0.72)), 0.7, texture="tiles", texture_scale=0.8),
            Material("wall_accent", col((0.35, 0.5, 0.7)), 0.5, texture="stripes", texture_scale=0.4),
            Material("ceiling", (0.92, 0.92, 0.92), 0.75),
            Material("wood", col((0.6, 0.4, 0.22)), 0.5, texture="stripes", texture_scale=0.08),
            Material("dark", (0.04, 0.04, 0.05), 0.04, texture="none"),
            Material("metal", col((0.75, 0.75, 0.78)), 0.6, specular=0.9, hole_prob=0.35),
            Material("glass", (0.75, 0.85, 0.9), 0.1, specular=0.3, transparency=0.85, hole_prob=0.5),
            Material("concrete", col((0.6, 0.6, 0.6)), 0.6, texture="tiles", texture_scale=0.3),
            Material("crate", col((0.75, 0.55, 0.3)), 0.65, texture="checker", texture_scale=0.15),
            Material("plastic", col((0.8, 0.2, 0.15)), 0.55, specular=0.2),
        ]
        room = Primitive("room", ROOM, (5.3, 3.2, 1.5), (3.3, 0.0, 1.5),
                         ("wall", "wall_accent", "wall", "wall", "floor", "ceiling"))
        prims = [
            room,
            Primitive("table", BOX, (0.45, 0.35, 0.4), (3.0 + j(0.2), 0.9 + j(0.15), 0.4), ("wood",),
                      yaw=0.2 + j(0.2)),
            Primitive("dark_box", BOX, (0.3, 0.4, 0.5), (4.2 + j(0.2), -1.2 + j(0.15), 0.5), ("dark",),
                      yaw=-0.3 + j(0.2)),
            Primitive("metal_sphere", SPHERE, (0.35, 0.0, 0.0), (2.4 + j(0.1), -0.2 + j(0.1), 0.35),
                      ("metal",), amplitude=(0.0, 0.6, 0.0), omega=0.9, phase=j(3.0)),
            Primitive("glass_pane", BOX, (0.02, 0.7, 0.9), (5.0 + j(0.2), 0.3 + j(0.2), 0.9), ("glass",),
                      yaw=0.15 + j(0.1)),
            Primitive("pillar", CYLINDER, (0.25, 1.5, 0.0), (6.2 + j(0.2), -1.8 + j(0.2), 1.5), ("concrete",)),
            Primitive("crate", BOX, (0.25, 0.25, 0.25), (3.6 + j(0.2), 0.0 + j(0.1), 0.25), ("crate",),
                      yaw_rate=0.6),
            Primitive("near_box", BOX, (0.12, 0.12, 0.2), (1.95 + j(0.05), 0.55 + j(0.05), 0.2), ("plastic",),
                      amplitude=(0.3, 0.0, 0.0), omega=0.7, phase=j(3.0)),
            Primitive("shelf", BOX, (0.2, 0.9, 0.9), (7.9, 1.6 + j(0.2), 0.9), ("wood",)),
            Primitive("ball", SPHERE, (0.2, 0.0, 0.0), (3.05 + j(0.1), 0.9 + j(0.1), 1.0), ("plastic",),
                      amplitude=(0.0, 0.0, 0.15), omega=2.0, phase=j(3.0)),
        ]
        return cls(prims, {m.name: m for m in mats}, BaseTrajectory(), seed)

    @classmethod
    def random(cls, seed: int = 0, n_objects: int | None = None) -> "World":
        """A randomised room for variety (training data, robustness tests): 7-12 m long (back
        wall 5-10 m ahead), random wall/floor materials and textures, 6-14 boxes, spheres and cylinders with
        random sizes and materials (dark, shiny, glass among them), some moving. Objects keep
        clear of the robot's path (x < 1.6 m, |y| < 1.2 m), so the sensors never start inside
        one. Deterministic by seed."""
        rng = np.random.default_rng([seed, 7])
        textures = list(TEXTURES)

        def plain(name: str) -> Material:
            return Material(name, tuple(float(c) for c in rng.uniform(0.15, 0.95, 3)),
                            float(rng.uniform(0.3, 0.85)), specular=float(rng.choice([0.0, 0.0, 0.2])),
                            texture=str(rng.choice(textures)), texture_scale=float(rng.uniform(0.08, 0.9)))

        mats = {n: plain(n) for n in ("floor", "wall_a", "wall_b", "ceiling")}
        mats["dark"] = Material("dark", tuple(float(c) for c in rng.uniform(0.02, 0.08, 3)),
                                float(rng.uniform(0.02, 0.08)))
        mats["metal"] = Material("metal", tuple(float(c) for c in rng.uniform(0.6, 0.85, 3)), 0.6,
                                 specular=float(rng.uniform(0.7, 1.0)), hole_prob=float(rng.uniform(0.2, 0.5)))
        mats["glass"] = Material("glass", (0.75, 0.85, 0.9), 0.1, specular=0.3,
                                 transparency=float(rng.uniform(0.7, 0.9)), hole_prob=float(rng.uniform(0.3, 0.7)))
        for k in range(5):
            mats[f"obj{k}"] = plain(f"obj{k}")
        hx, hy, hz = float(rng.uniform(3.5, 6.0)), float(rng.uniform(2.2, 4.0)), float(rng.uniform(1.3, 2.0))
        walls = [str(rng.choice(["wall_a", "wall_b"])) for _ in range(4)]
        prims = [Primitive("room", ROOM, (hx, hy, hz), (hx - 2.0, 0.0, hz),
                           (walls[0], walls[1], walls[2], walls[3], "floor", "ceiling"))]
        far = 2 * hx - 2.0 - 0.3
        n = int(rng.integers(6, 15)) if n_objects is None else int(n_objects)
        for k in range(n):
            kind = int(rng.choice([BOX, BOX, SPHERE, CYLINDER]))
            r = rng.random()
            mat = "dark" if r < 0.15 else "metal" if r < 0.3 else "glass" if r < 0.4 else f"obj{rng.integers(5)}"
            if kind == BOX:
                size = (float(rng.uniform(0.1, 0.6)), float(rng.uniform(0.1, 0.6)), float(rng.uniform(0.1, 0.8)))
                if mat == "glass":
                    size = (0.02, float(rng.uniform(0.3, 0.9)), float(rng.uniform(0.4, 1.0)))
                zc, reach = size[2], max(size[0], size[1]) * 1.5
            elif kind == SPHERE:
                size = (float(rng.uniform(0.1, 0.5)), 0.0, 0.0)
                zc = size[0] + float(rng.choice([0.0, rng.uniform(0.0, 1.0)]))
                reach = size[0]
            else:
                size = (float(rng.uniform(0.08, 0.4)), float(rng.uniform(0.2, hz)), 0.0)
                zc, reach = size[1], size[0]
            moving = rng.random() < 0.3
            amp_axis = int(rng.integers(2))
            amp = float(rng.uniform(0.1, 0.5)) if moving else 0.0
            for _ in range(50):  # keep the robot's path clear, including the motion's reach
                x = float(rng.uniform(1.6 + reach + amp, max(far - reach, 1.7 + reach + amp)))
                y = float(rng.uniform(-hy + reach + 0.1, hy - reach - 0.1))
                if x - reach - (amp if amp_axis == 0 else 0.0) >= 1.6 or abs(y) - reach - amp >= 1.2:
                    break
            amplitude = (amp, 0.0, 0.0) if amp_axis == 0 else (0.0, amp, 0.0)
            prims.append(Primitive(f"obj{k}", kind, size, (x, y, zc), (mat,), yaw=float(rng.uniform(-np.pi, np.pi)),
                                   amplitude=amplitude if moving else (0.0, 0.0, 0.0),
                                   omega=float(rng.uniform(0.3, 1.5)) if moving else 0.0,
                                   phase=float(rng.uniform(0, 2 * np.pi)),
                                   yaw_rate=float(rng.uniform(-0.8, 0.8)) if moving and kind == BOX else 0.0))
        return cls(prims, mats, BaseTrajectory(), seed)
