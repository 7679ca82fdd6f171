"""The built-in scene: geometry, sensor models and calibration between its camera and LiDAR.

ROS-free and fast: every check renders a few frames of small analytic worlds or of
World.default and compares them with closed-form expectations.
"""
from __future__ import annotations

import numpy as np
import pytest

from depth_ai_nodes.core.scene import (BOX, ROOM, SPHERE, BaseTrajectory, CameraRig, DepthSensorModel, Material,
                                       Primitive, SyntheticCamera, SyntheticLidar, World, lidar_to_camera, scene_time)

STILL = BaseTrajectory(x=(0.0, 0.0, 0.0, 0.0), y=(0.0, 0.0, 0.0, 0.0), yaw=(0.0, 0.0, 0.0, 0.0))
LEVEL_MOUNT = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0.6], [0, 0, 0, 1.0]])  # base <- camera_link


def box_world(box_x: float = 1.0) -> World:
    """A room x in [-2, 5] (back wall 5 m ahead of the camera), a pure red box whose front face
    is box_x ahead of the camera and faces it, a robot standing still at the origin."""
    mats = {
        "wall": Material("wall", (0.9, 0.9, 0.9), 0.7),
        "floor": Material("floor", (0.5, 0.5, 0.5), 0.6),
        "red": Material("red", (1.0, 0.0, 0.0), 0.6),
    }
    prims = [
        Primitive("room", ROOM, (3.5, 4.0, 1.5), (1.5, 0.0, 1.5), ("wall", "wall", "wall", "wall", "floor", "wall")),
        Primitive("box", BOX, (0.2, 0.3, 0.3), (box_x + 0.2, 0.0, 0.6), ("red",)),
    ]
    return World(prims, mats, STILL)


def level_rig(**kw) -> CameraRig:
    return CameraRig(mount=LEVEL_MOUNT, **kw)


@pytest.fixture(scope="module")
def default_world() -> World:
    return World.default(seed=0)


# ------------------------------------------------------------------------------ geometry
def test_gt_depth_matches_analytic_plane_and_box():
    rig = level_rig()
    frame = SyntheticCamera(box_world(1.0), rig).render(0.0, labels=True)
    fy, cy = rig.depth_model.fy, rig.depth_model.cy
    # the box's front face is a fronto-parallel plane 1.0 m ahead
    red = frame.material_id == 2
    assert red.sum() > 5000
    np.testing.assert_allclose(frame.gt_depth_m[red], 1.0, rtol=1e-5)
    # the floor 0.6 m below a level camera: z = 0.6 fy / (v - cy), in a column clear of the box
    v = np.arange(300, rig.height)
    np.testing.assert_allclose(frame.gt_depth_m[v, 20], 0.6 * fy / (v - cy), rtol=1e-5)
    assert (frame.material_id[v, 20] == 1).all()


def test_gt_points_lie_on_surfaces_of_every_primitive(default_world):
    cam = SyntheticCamera(default_world, CameraRig(320, 240))
    t = 1.3
    f = cam.render(t)
    v, u = np.nonzero(np.isfinite(f.gt_depth_m))
    z = f.gt_depth_m[v, u].astype(np.float64)
    pts = cam.rig.depth_model.deproject(np.stack([u, v], 1).astype(np.float64), z)
    world = pts @ f.world_from_depth[:3, :3].T + f.world_from_depth[:3, 3]
    d = default_world.surface_distance(world, t)
    assert np.isfinite(f.gt_depth_m).all()  # a closed room: every ray hits something
    assert np.percentile(d, 99.9) < 1e-4 * z.max()


def test_base_twist_is_the_derivative_of_base_pose(default_world):
    for t in (0.0, 1.7, 4.2):
        h = 1e-5
        a = default_world.base_pose_matrix(t - h)
        b = default_world.base_pose_matrix(t + h)
        now = default_world.base_pose_matrix(t)
        v_world = (b[:3, 3] - a[:3, 3]) / (2 * h)
        rel = np.linalg.inv(a[:3, :3]) @ b[:3, :3]
        wz = np.arctan2(rel[1, 0], rel[0, 0]) / (2 * h)
        lin, ang = default_world.base_twist(t)
        np.testing.assert_allclose(lin, now[:3, :3].T @ v_world, atol=1e-6)
        np.testing.assert_allclose(ang, [0.0, 0.0, wz], atol=1e-6)
    assert np.linalg.norm(default_world.base_twist(0.0)[0]) > 0.1  # the robot does move


# ------------------------------------------------------------------------------ determinism, motion
def test_deterministic_by_seed_and_frames_differ_over_time(default_world):
    rig = CameraRig(320, 240)
    a = SyntheticCamera(default_world, rig, seed=3).render(0.5)
    b = SyntheticCamera(World.default(seed=0), rig, seed=3).render(0.5)
    for name in ("color", "ir", "depth_mm", "gt_depth_m"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    other_noise = SyntheticCamera(default_world, rig, seed=4).render(0.5)
    assert not np.array_equal(a.depth_mm, other_noise.depth_mm)
    np.testing.assert_array_equal(a.gt_depth_m, other_noise.gt_depth_m)  # same world, other noise
    other_world = SyntheticCamera(World.default(seed=1), rig, seed=3).render(0.5)
    assert np.nanmean(np.abs(other_world.gt_depth_m - a.gt_depth_m)) > 0.01
    later = SyntheticCamera(default_world, rig, seed=3).render(0.5 + 1 / 30)
    assert np.nanmean(np.abs(later.gt_depth_m - a.gt_depth_m)) > 1e-3
    assert np.mean(later.color != a.color) > 0.2


def test_parallel_bands_render_the_same_frames(default_world):
    rig = CameraRig(320, 240)
    a = SyntheticCamera(default_world, rig, seed=1).render(2.0)
    ahead = SyntheticCamera(default_world, rig, seed=1).render_async(2.0)
    np.testing.assert_array_equal(ahead.result(timeout=60).depth_mm, a.depth_mm)
    for parallel in (True, 3):  # one band per core; three uneven bands
        b = SyntheticCamera(default_world, rig, seed=1, parallel=parallel).render(2.0)
        for name in ("color", "ir", "depth_mm", "gt_depth_m", "gt_color_depth_m"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


# ------------------------------------------------------------------------------ depth sensor model
def test_depth_noise_grows_with_distance_as_stereo_predicts():
    rig = level_rig()
    cam = SyntheticCamera(box_world(4.8), rig, seed=0)
    err, z = [], []
    for k in range(4):
        f = cam.render(0.0, frame_index=k, labels=True)
        ok = (f.depth_mm > 0) & (f.material_id == 1)  # the floor
        err.append(f.depth_mm[ok] * rig.depth_scale - f.gt_depth_m[ok])
        z.append(f.gt_depth_m[ok])
    err, z = np.concatenate(err), np.concatenate(z)
    expected = lambda zz: zz ** 2 * DepthSensorModel().subpixel_sigma / (rig.depth_model.fx * rig.baseline_m)
    stds = []
    for lo, hi in ((1.0, 1.4), (2.0, 2.6), (3.6, 4.4)):
        sel = (z >= lo) & (z < hi)
        assert sel.sum() > 2000
        s = err[sel].std()
        ratio = s / expected(z[sel]).mean()
        assert 0.7 < ratio < 1.4, (lo, hi, s, ratio)
        assert abs(np.median(err[sel])) < 0.3 * s + 0.001  # unbiased
        stds.append(s)
    assert stds[0] < stds[1] < stds[2] and stds[2] > 5 * stds[0]
    # part of the noise is spatially correlated (a block matcher's errors are), not all
    f = cam.render(0.0, frame_index=5, labels=True)
    e = np.where((f.depth_mm > 0) & (f.material_id == 1), f.depth_mm * rig.depth_scale - f.gt_depth_m, np.nan)
    e = e[int(rig.depth_model.cy) + 60:int(rig.depth_model.cy) + 90]  # floor rows ~3-4 m away
    e = e / np.nanstd(e, axis=1, keepdims=True)
    def corr(k: int) -> float:
        a, b = e[:, :-k].ravel(), e[:, k:].ravel()
        ok = np.isfinite(a) & np.isfinite(b)
        return float(np.corrcoef(a[ok], b[ok])[0, 1])
    assert 0.2 < corr(1) < 0.8 and abs(corr(25)) < 0.1, (corr(1), corr(25))
    # millimetre quantisation
    f = cam.render(0.0, frame_index=9)
    assert f.depth_mm.dtype == np.uint16


def test_holes_on_dark_shiny_glass_and_far_surfaces_but_not_elsewhere(default_world):
    cam = SyntheticCamera(default_world, CameraRig(), seed=0, sensor=DepthSensorModel(max_z_m=5.0))
    idx = default_world.material_index
    stats: dict[str, list] = {k: [] for k in ("dark", "metal", "glass", "ordinary", "far", "all")}
    for t in (0.0, 1.5, 3.0):
        f = cam.render(t, labels=True)
        hole = f.depth_mm == 0
        gt = f.gt_depth_m
        near = gt < 4.5
        lab = f.material_id
        stats["dark"].append(hole[(lab == idx("dark")) & near])
        stats["metal"].append(hole[(lab == idx("metal")) & near])
        stats["glass"].append(hole[lab == idx("glass")])
        plain = np.isin(lab, [idx(n) for n in ("floor", "wall", "wall_accent", "crate", "wood")])
        stats["ordinary"].append(hole[plain & near])
        stats["far"].append(hole[(gt > 5.6) & (lab != idx("glass"))])
        stats["all"].append(hole.ravel())
    frac = {k: float(np.concatenate(v).mean()) for k, v in stats.items() if sum(len(a) for a in v) > 200}
    assert {"dark", "metal", "glass", "ordinary", "far"} <= set(frac), frac
    assert frac["dark"] > 0.6, frac
    assert frac["metal"] > 0.2, frac
    assert frac["glass"] > 0.25, frac
    assert frac["far"] > 0.97, frac
    assert frac["ordinary"] < 0.08, frac
    assert 0.1 < frac["all"] < 0.6, frac


def test_glass_shows_the_surface_behind_when_not_a_hole(default_world):
    cam = SyntheticCamera(default_world, CameraRig(), seed=0, sensor=DepthSensorModel(max_z_m=10.0))
    f = cam.render(0.0, labels=True)
    glass = (f.material_id == default_world.material_index("glass")) & (f.depth_mm > 0)
    assert glass.sum() > 500
    behind = f.depth_mm[glass] * 0.001 > f.gt_depth_m[glass] + 0.2
    assert behind.mean() > 0.95


def test_occlusion_shadow_left_of_a_near_object_has_the_stereo_width():
    rig = level_rig()
    f = SyntheticCamera(box_world(1.0), rig, seed=0).render(0.0, labels=True)
    rows = np.arange(int(rig.depth_model.cy) - 60, int(rig.depth_model.cy) + 60)
    red = f.material_id[rows] == 2
    left = red.argmax(axis=1)                          # first box pixel per row
    right = rig.width - red[:, ::-1].argmax(axis=1)    # one past the last box pixel
    fb = rig.depth_model.fx * rig.baseline_m
    width = fb * (1 / 1.0 - 1 / 5.0)                    # disparity step box -> back wall
    band_l = np.array([f.depth_mm[r, lft - int(width) + 1:lft] for r, lft in zip(rows, left)])
    band_r = np.array([f.depth_mm[r, rgt:rgt + int(width)] for r, rgt in zip(rows, right)])
    beyond = np.array([f.depth_mm[r, lft - int(width) - 3:lft - int(width) - 1] for r, lft in zip(rows, left)])
    assert np.isfinite(f.gt_depth_m[rows]).all()
    assert (band_l == 0).mean() > 0.97
    assert (band_r == 0).mean() < 0.02
    assert (beyond == 0).mean() < 0.05


def test_depth_and_color_agree_through_the_rig_calibration():
    rig = level_rig()
    f = SyntheticCamera(box_world(1.0), rig, seed=0).render(0.0, labels=True)
    v, u = np.nonzero(f.material_id == 2)
    pts = rig.depth_model.deproject(np.stack([u, v], 1).astype(np.float64), f.gt_depth_m[v, u].astype(np.float64))
    uv = np.asarray(rig.color_model.project(rig.depth_to_color.apply(pts)))
    c = f.color.astype(int)
    red = (c[..., 0] > 80) & (c[..., 1] < 30) & (c[..., 2] < 30)
    rv, ru = np.nonzero(red)
    centroid = np.array([ru.mean(), rv.mean()])
    # the depth frame's box pixels are sparser than colour's (fx 385 vs 615): compare centroids
    np.testing.assert_allclose(uv.mean(axis=0), centroid, atol=0.5)
    # and the colour camera really is offset: ignoring depth_to_color misses by pixels
    naive = np.asarray(rig.color_model.project(pts))
    assert np.abs(naive.mean(axis=0) - centroid).max() > 4.0
    # the colour frame's own ground truth agrees with the depth frame's, moved by depth_to_color
    iu = np.floor(uv[:, 0] + 0.5).astype(int)
    iv = np.floor(uv[:, 1] + 0.5).astype(int)
    z_color = rig.depth_to_color.apply(pts)[:, 2]
    np.testing.assert_allclose(f.gt_color_depth_m[iv, iu], z_color, atol=2e-3)
    assert red[iv, iu].mean() > 0.97


# ------------------------------------------------------------------------------ LiDAR
@pytest.mark.parametrize("beams,columns", [(32, 1024), (128, 2048)])
def test_lidar_layout_and_per_point_times(default_world, beams, columns):
    lidar = SyntheticLidar(default_world, beams=beams, columns=columns, rate_hz=10.0)
    org = lidar.scan(0.0, organized=True)
    assert org["x"].shape == (beams, columns) and org["ring"].dtype == np.uint16
    assert {k: v.dtype for k, v in org.items()} == {"x": np.float32, "y": np.float32, "z": np.float32,
                                                    "intensity": np.float32, "ring": np.uint16, "t": np.float32}
    pts = lidar.scan(0.0)
    n = len(pts["x"])
    assert 0.9 * beams * columns < n <= beams * columns
    assert all(len(a) == n for a in pts.values())
    t = pts["t"]
    assert t.min() >= 0.0 and t.max() < 0.1
    assert t.max() - t.min() > 0.1 * (1 - 2 / columns)
    assert (np.diff(t) >= 0).all()
    assert set(np.unique(pts["ring"])) == set(range(beams))
    assert np.isfinite(pts["intensity"]).all() and (pts["intensity"] >= 0).all()


def test_lidar_points_lie_on_surfaces_at_their_own_time(default_world):
    lidar = SyntheticLidar(default_world, beams=32, columns=1024)
    t0 = 2.0
    pts = lidar.scan(t0)
    xyz = np.stack([pts["x"], pts["y"], pts["z"]], 1).astype(np.float64)
    times = t0 + pts["t"].astype(np.float64)
    world = np.empty_like(xyz)
    for tt in np.unique(times):  # one pose per column
        sel = times == tt
        m = lidar.pose_matrix(tt)
        world[sel] = xyz[sel] @ m[:3, :3].T + m[:3, 3]
    d = default_world.surface_distance(world, times)
    assert np.percentile(d, 99.9) < 1e-4, np.percentile(d, 99.9)
    # the sweep sees the motion: one pose for the whole scan puts many points off the surfaces
    m = lidar.pose_matrix(t0)
    d_naive = default_world.surface_distance(xyz @ m[:3, :3].T + m[:3, 3], times)
    assert (d_naive > 0.01).mean() > 0.2


def test_lidar_projected_into_the_camera_lands_on_its_gt_depth(default_world):
    world = default_world.static(1.0)  # no motion: the two sensors see one instant
    rig = CameraRig()
    f = SyntheticCamera(world, rig).render(0.0)
    lidar = SyntheticLidar(world, beams=64, columns=1024)
    pts = lidar.scan(0.0)
    xyz = np.stack([pts["x"], pts["y"], pts["z"]], 1).astype(np.float64)
    cam = lidar_to_camera(rig, lidar).apply(xyz)
    front = cam[:, 2] > 0.3
    uv = np.asarray(rig.depth_model.project(cam[front]))
    iu = np.floor(uv[:, 0] + 0.5).astype(int)
    iv = np.floor(uv[:, 1] + 0.5).astype(int)
    inside = (iu >= 0) & (iv >= 0) & (iu < rig.width) & (iv < rig.height)
    assert inside.sum() > 3000
    z = cam[front][inside, 2]
    gt = f.gt_depth_m[iv[inside], iu[inside]]
    diff = gt - z
    assert np.median(np.abs(diff)) < 0.005
    assert (np.abs(diff) < 0.03).mean() > 0.75
    # what does not match is hidden from the camera (nearer surface at that pixel), not behind it
    assert (diff > 0.03).mean() < 0.02


def test_lidar_beam_elevations_and_mount(default_world):
    lidar = SyntheticLidar(default_world, beams=4, columns=256, beam_elevations_deg=(10.0, 2.0, -1.0, -15.0))
    s = lidar.scan(0.0, organized=True)
    el = np.degrees(np.arctan2(s["z"], np.hypot(s["x"], s["y"])))
    np.testing.assert_allclose(np.nanmedian(el, axis=1), [10.0, 2.0, -1.0, -15.0], atol=1e-3)
    assert (s["ring"] == np.arange(4)[:, None]).all()
    with pytest.raises(ValueError):
        SyntheticLidar(default_world, beams=3, beam_elevations_deg=(1.0, 2.0))
    # the default mount is above the camera, and the calibration chains through base_link
    rig = CameraRig()
    chained = rig.depth_in_base.inverse() @ lidar.lidar_in_base
    np.testing.assert_allclose(lidar_to_camera(rig, lidar).matrix(), chained.matrix(), atol=1e-12)
    assert lidar.lidar_in_base.matrix()[2, 3] > rig.camera_link_in_base.matrix()[2, 3]


@pytest.mark.parametrize("make", [
    lambda w: CameraRig(width=0),
    lambda w: CameraRig(fps=0.0),
    lambda w: DepthSensorModel(min_z_m=3.0, max_z_m=2.0),
    lambda w: SyntheticLidar(w, beams=0),
    lambda w: SyntheticLidar(w, vertical_fov_deg=(30.0, -30.0)),
    lambda w: World([Primitive("p", SPHERE, (1.0, 0, 0), (0, 0, 0), ("nope",))], {}),
    lambda w: Material("m", texture="marble"),
    lambda w: Material("m", transparency=1.5),
])
def test_bad_configuration_raises_a_clear_value_error(default_world, make):
    with pytest.raises(ValueError, match=r"\w+"):
        make(default_world)


def test_projector_dots_slide_with_depth_by_the_emitter_parallax():
    """Dots are fixed in the emitter frame (25 mm along +x): moving a plane from z1 to z2 shifts
    the pattern in the image by fx * e * (1/z1 - 1/z2) pixels, leftwards as it recedes."""
    rig = level_rig()
    sensor = DepthSensorModel(ir_noise=0.0)
    z1, z2 = 1.0, 1.5
    a = SyntheticCamera(box_world(z1), rig, sensor=sensor).render(0.0).ir.astype(float)
    b = SyntheticCamera(box_world(z2), rig, sensor=sensor).render(0.0).ir.astype(float)
    cu, cv = int(rig.depth_model.cx), int(rig.depth_model.cy)
    pb = b[cv - 30:cv + 30, cu - 30:cu + 30]          # inside the box face in both frames
    ssd = {s: np.mean((a[cv - 30:cv + 30, cu - 30 + s:cu + 30 + s] - pb) ** 2) for s in range(-8, 9)}
    best = min(ssd, key=ssd.get)
    expected = rig.depth_model.fx * sensor.emitter_x_m * (1 / z1 - 1 / z2)
    assert abs(best - expected) <= 1.0, (best, expected)
    assert ssd[best] < 0.5 * np.median(list(ssd.values()))  # a real match, not a flat image
    off = SyntheticCamera(box_world(z1), rig, sensor=DepthSensorModel(ir_noise=0.0, emitter_on=False)).render(0.0)
    assert off.ir[cv - 30:cv + 30, cu - 30:cu + 30].std() < 0.2 * a[cv - 30:cv + 30, cu - 30:cu + 30].std()


def test_random_worlds_are_deterministic_varied_and_keep_the_robot_clear():
    rig = CameraRig(160, 120)
    a = SyntheticCamera(World.random(5), rig).render(1.0)
    b = SyntheticCamera(World.random(5), rig).render(1.0)
    np.testing.assert_array_equal(a.color, b.color)
    sizes = set()
    for seed in range(6):
        world = World.random(seed)
        sizes.add(len(world.primitives))
        cam, lidar = SyntheticCamera(world, rig), SyntheticLidar(world, beams=16, columns=256)
        for t in np.linspace(0.0, 30.0, 7):
            gt = cam.render(float(t)).gt_depth_m
            assert np.isfinite(gt).all() and gt.min() > 0.25, (seed, t)  # never inside an object
            assert np.isfinite(lidar.scan(float(t), organized=True)["x"]).mean() > 0.5
    assert len(sizes) > 2


def test_no_projector_dots_in_the_emitter_shadow():
    rig = level_rig()
    sensor = DepthSensorModel(ir_noise=0.0)
    f = SyntheticCamera(box_world(1.0), rig, sensor=sensor).render(0.0, labels=True)
    cv = int(rig.depth_model.cy)
    rows = slice(cv - 60, cv + 60)
    left = int((f.material_id[cv] == 2).argmax())
    width = rig.depth_model.fx * sensor.emitter_x_m * (1 / 1.0 - 1 / 5.0)  # ~7.7 px on the wall
    ir = f.ir[rows].astype(float)
    dots = ir > np.median(ir[:, left - 60:left - 20], axis=1, keepdims=True) + 8  # brighter than the wall
    in_shadow = dots[:, left - int(width) + 1:left - 1].mean()
    lit = dots[:, left - 60:left - 20].mean()                             # the same wall, lit
    assert lit > 0.03 and in_shadow < 0.1 * lit, (in_shadow, lit)


def test_ir_at_reads_the_rendered_ir_where_points_project(default_world):
    rig = CameraRig(320, 240)
    cam = SyntheticCamera(default_world, rig)
    f = cam.render(0.7)
    rng = np.random.default_rng(0)
    u = rng.integers(0, rig.width, 500)
    v = rng.integers(0, rig.height, 500)
    jitter = rng.uniform(-0.45, 0.45, (500, 2))  # anywhere inside the pixel
    pts = rig.ir_model.deproject(np.stack([u, v], 1) + jitter, f.gt_depth_m[v, u].astype(np.float64))
    vals, uv = cam.ir_at(f, pts)
    np.testing.assert_array_equal(vals, f.ir[v, u].astype(np.float32))
    np.testing.assert_allclose(uv, np.stack([u, v], 1) + jitter, atol=1e-6)
    behind, _ = cam.ir_at(f, [[0.0, 0.0, -1.0], [50.0, 0.0, 1.0]])
    assert np.isnan(behind).all()


def test_epoch_stamps_as_scene_time_keep_sensors_consistent(default_world):
    """Processes use scene_time(stamp): at epoch-sized times poses stay exact."""
    stamp = 1_764_000_000_123_456_789
    t = scene_time(stamp)
    assert abs(t - 1_764_000_000.123456789) < 1e-6
    lidar = SyntheticLidar(default_world, beams=16, columns=512)
    pts = lidar.scan(t)
    xyz = np.stack([pts["x"], pts["y"], pts["z"]], 1).astype(np.float64)
    times = t + pts["t"].astype(np.float64)
    world = np.empty_like(xyz)
    for tt in np.unique(times):
        sel = times == tt
        m = lidar.pose_matrix(tt)
        world[sel] = xyz[sel] @ m[:3, :3].T + m[:3, 3]
    assert np.percentile(default_world.surface_distance(world, times), 99.9) < 1e-4
