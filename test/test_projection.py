"""Fusion core, ROS-free: projection vs the KITTI calibration on real scans, occlusion,
distortion, calibration files, time sync, motion compensation on the built-in scene."""
from __future__ import annotations

import numpy as np
import pytest

from depth_ai_nodes.core import calibration as calib
from depth_ai_nodes.core.camera_model import CameraModel
from depth_ai_nodes.core.motion import deskew, twist_in_frame
from depth_ai_nodes.core import projection
from depth_ai_nodes.core.projection import Intrinsics, Projector, project_points
from depth_ai_nodes.core.sync import ApproxTimeMatcher


# ----------------------------------------------------------------------------- KITTI
@pytest.mark.data
@pytest.mark.parametrize("frame", ["000000", "000001"])
def test_kitti_projection_matches_reference_calibration(shared_data, frame):
    """Our transform + K projection equals P2 @ R0_rect @ Tr_velo_to_cam @ X on real scans."""
    from PIL import Image

    from depth_ai_nodes.lidar.kitti import read_kitti_bin

    kitti = shared_data / "kitti"
    pts = read_kitti_bin(kitti / "velodyne" / f"{frame}.bin")
    c = calib.parse_kitti_calib(kitti / "calib" / f"{frame}.txt")
    w, h = Image.open(kitti / "image_2" / f"{frame}.png").size
    xyz = np.stack([pts["x"], pts["y"], pts["z"]], axis=1)
    ref_h = np.c_[xyz.astype(np.float64), np.ones(len(xyz))] @ c.projection(2).T
    front = ref_h[:, 2] > 0.5
    ref = ref_h[:, :2] / ref_h[:, 2:3]
    in_img = front & (ref[:, 0] >= -0.5) & (ref[:, 0] < w - 0.5) & (ref[:, 1] >= -0.5) & (ref[:, 1] < h - 0.5)
    assert 15_000 < in_img.sum() < 25_000, "KITTI scans put about 19-20k points into the image"

    T, K = c.lidar_to_camera(2)
    uv = project_points(xyz, T, Intrinsics.from_k(K, w, h))
    err = np.linalg.norm(uv[front] - ref[front], axis=1)
    assert np.all(np.isfinite(err))
    assert err.max() < 0.5, f"max reprojection difference {err.max():.3f} px"

    # the fusion path agrees on which points are in the image
    proj = Projector(Intrinsics.from_k(K, w, h), min_depth=0.5).project(pts["x"], pts["y"], pts["z"], T)
    assert abs(proj.in_view - int(in_img.sum())) <= 2  # boundary pixels: float32 rounding


def test_kitti_calib_parser_rejects_incomplete_file(tmp_path):
    p = tmp_path / "calib.txt"
    p.write_text("P2: 1 0 0 0 0 1 0 0 0 0 1 0\nR0_rect: 1 0 0 0 1 0 0 0 1\n")
    with pytest.raises(calib.CalibrationError, match="Tr_velo_to_cam"):
        calib.parse_kitti_calib(p)


def test_yaml_extrinsics_round_trip_and_errors(tmp_path):
    m = calib.from_xyz_quat([0.1, -0.2, 0.3], [0.5, -0.5, 0.5, 0.5])
    path = tmp_path / "ext.yaml"
    calib.save_extrinsics_yaml(path, calib.Extrinsic(m, "camera_infra1_optical_frame", "lidar_link"))
    ext, k = calib.load_calibration_file(path)
    assert k is None and ext.child_frame == "lidar_link"
    np.testing.assert_allclose(ext.matrix, m, atol=1e-12)
    np.testing.assert_allclose(calib.as_matrix(calib.as_rigid(m)), m)
    with pytest.raises(calib.CalibrationError, match="rigid"):
        calib.from_matrix(np.diag([2.0, 1, 1, 1]))
    with pytest.raises(calib.CalibrationError, match="zero"):
        calib.from_xyz_quat([0, 0, 0], [0, 0, 0, 0])


# ----------------------------------------------------------------------------- occlusion
def _grid_points(z: float, x0: float, x1: float, y0: float, y1: float, step_rad: float):
    """Points of a fronto-parallel plane at depth z sampled on a ray grid of `step_rad`
    (a LiDAR's sparse sampling), in the camera frame."""
    ax = np.arange(np.arctan2(x0, z), np.arctan2(x1, z), step_rad)
    ay = np.arange(np.arctan2(y0, z), np.arctan2(y1, z), step_rad)
    gx, gy = np.meshgrid(np.tan(ax) * z, np.tan(ay) * z)
    return np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, z)], axis=1).astype(np.float32)


def test_occlusion_hides_sparse_background_behind_sparse_foreground():
    intr = Intrinsics.from_k(np.array([[400.0, 0, 320], [0, 400, 240], [0, 0, 1]]), 640, 480)
    step = 3.0 / 400  # 3 px between neighbouring LiDAR points: sparse
    wall = _grid_points(10.0, -6, 6, -4, 4, step)
    board = _grid_points(3.0, -0.6, 0.6, -0.45, 0.45, step)  # covers |u-320|<80, |v-240|<60
    pts = np.concatenate([wall, board])
    is_board = np.r_[np.zeros(len(wall), bool), np.ones(len(board), bool)]
    x, y, z = (np.ascontiguousarray(pts[:, i]) for i in range(3))

    proj = Projector(intr, splat_px=2).project_visible(x, y, z, np.eye(4))
    u = pts[:, 0] / pts[:, 2] * 400 + 320
    v = pts[:, 1] / pts[:, 2] * 400 + 240
    behind = ~is_board & (np.abs(u - 320) < 78) & (np.abs(v - 240) < 58)
    clear = ~is_board & ((np.abs(u - 320) > 84) | (np.abs(v - 240) > 64)) & (proj.pix >= 0)
    assert behind.sum() > 500 and clear.sum() > 5000
    assert proj.visible[is_board].all(), "the near board is never occluded"
    assert not proj.visible[behind].any(), "wall points behind the board must get no camera value"
    assert proj.visible[clear].all(), "wall points away from the board stay visible"
    assert proj.occluded == int((~proj.visible & (proj.pix >= 0)).sum())

    # without a footprint the sparse board lets the wall through its gaps: the splat matters
    leak = Projector(intr, splat_px=0).project_visible(x, y, z, np.eye(4))
    assert leak.visible[behind].mean() > 0.5

    # the lookups honour visibility: IR and the sparse depth image only from visible points
    ir = (np.arange(640 * 480) % 251).astype(np.uint8).reshape(480, 640)
    vals = Projector(intr, splat_px=2).sample(ir, proj)
    assert np.isnan(vals[behind]).all()
    np.testing.assert_array_equal(vals[is_board], ir.reshape(-1)[proj.pix[is_board]])
    depth = Projector(intr).sparse_depth(proj)
    assert np.nanmax(depth[180:300, 240:400]) == pytest.approx(3.0, abs=1e-4)


# ----------------------------------------------------------------------------- fuse
def _reference_rows(proj: Projector, x, y, z, inten, T, ir, rgb, ref, ref_col):
    """The fused rows built the plain way: project, visibility, one lookup at a time."""
    p = proj.project_visible(x, y, z, T)
    cols = max(5 + (rgb is not None) + (ref is not None), ref_col + 1 if ref is not None else 0)
    rows = np.full((x.size, cols), np.nan, np.float32)
    rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3] = x, y, z, inten
    if ir is not None:
        rows[:, 4] = proj.sample(ir, p)
    if rgb is not None:
        rows[:, 5] = proj.sample_rgb(rgb, p)
    if ref is not None:
        cam = proj.sample(ref, p)
        rows[:, ref_col] = np.where(cam > 0, cam - p.depth, np.nan)
    return rows, p


def _scattered_cloud(n: int, seed: int) -> np.ndarray:
    """Points all around a camera, with the awkward ones: NaN, inf, z = 0, huge, behind."""
    rng = np.random.default_rng(seed)
    pts = np.c_[rng.uniform(-1.2, 1.2, (n, 2)) * rng.uniform(0.5, 30, (n, 1)), rng.uniform(-5, 30, n)]
    pts[::97] = np.nan
    pts[::89, 2] = 0.0
    pts[::79, 0] = np.inf
    pts[::71] *= 1e7
    return pts.astype(np.float32)


@pytest.mark.parametrize("model,D", [("plumb_bob", None), ("plumb_bob", [-0.28, 0.07, 1e-3, -5e-4, 0.0]),
                                     ("rational_polynomial", [0.5, -0.1, 2e-4, -3e-4, 0.01, 0.8, -0.05, 0.02]),
                                     ("equidistant", [-0.02, 0.004, -0.003, 0.0005])])
@pytest.mark.parametrize("n,threads", [(40001, 1), (40000, 2)])
def test_fuse_equals_the_plain_path_for_every_layout(model, D, n, threads):
    """Projector.fuse (pair-store pack, vectorised projection, z-buffer, coarse occlusion test)
    gives bit for bit the rows and visibility of project_visible + sample, for every column
    layout (odd and even, in place into a wider buffer), strided columns, odd and even clouds,
    one thread or two."""
    assert n >= projection.PARALLEL_MIN_POINTS  # the second thread really runs
    K = np.array([[400.0, 0, 320.5], [0, 410.0, 240.2], [0, 0, 1]])
    intr = Intrinsics.from_k(K, 640, 480, D, model)
    rng = np.random.default_rng(n)
    pts = _scattered_cloud(n, n)
    cloud = np.c_[pts, rng.uniform(0, 255, n).astype(np.float32)]  # x y z intensity rows: strided columns
    x, y, z, inten = (cloud[:, k] for k in range(4))
    T = np.eye(4)
    T[:3, 3] = [0.05, -0.02, 0.1]
    ir = rng.integers(0, 65535, (480, 640)).astype(np.uint16)
    rgb = rng.integers(0, 255, (480, 640, 3)).astype(np.uint8)
    ref = np.where(rng.random((480, 640)) < 0.2, 0, rng.uniform(0.5, 40, (480, 640))).astype(np.float32)
    layouts = [(1, 0, 0, 0), (1, 1, 0, 0), (1, 1, 1, 0), (0, 1, 1, 0), (1, 0, 1, 0), (1, 0, 1, 1), (0, 0, 0, 3)]
    for k, (use_ir, use_rgb, use_ref, extra) in enumerate(layouts):
        a, b, c = (ir if use_ir else None), (rgb if use_rgb else None), (ref if use_ref else None)
        ref_col = 5 + use_rgb + extra
        splat = k % 5  # the compiled radii 0..3 and a run-time one
        want, p = _reference_rows(Projector(intr, splat_px=splat), x, y, z, inten, T, a, b, c, ref_col)
        width = max(want.shape[1], 5 + use_rgb + use_ref + extra)
        out = np.full((n, width), 7.0, np.float32)  # in place, with columns the caller fills
        fused = Projector(intr, splat_px=splat, threads=threads)
        rows, q = fused.fuse(x, y, z, inten, T, a, rgb=b, ref_depth=c, out=out, ref_column=ref_col if use_ref else None)
        assert rows is out
        assert p.in_view > 1000 and (p.occluded > 10 or splat == 0)
        np.testing.assert_array_equal(q.visible, p.visible)
        np.testing.assert_array_equal(q.idx, p.idx)
        assert q.occluded == p.occluded
        got = rows[:, :want.shape[1]]
        mask = np.ones(want.shape[1], bool)
        if use_ref and extra:
            mask[5 + use_rgb: ref_col] = False  # columns fuse leaves to the caller: NaN
            assert np.isnan(got[:, ~mask]).all()
        np.testing.assert_array_equal(got[:, mask].view(np.uint32), want[:, mask].view(np.uint32))
        assert np.isnan(rows[:, want.shape[1]:]).all()
        # and into a fresh array of its own
        alone, _ = Projector(intr, splat_px=splat, threads=threads).fuse(x, y, z, inten, T, a, rgb=b, ref_depth=c,
                                        ref_column=ref_col if use_ref else None)
        np.testing.assert_array_equal(alone.view(np.uint32), rows[:, :alone.shape[1]].view(np.uint32))


@pytest.mark.parametrize("threads", [1, 2])
def test_fuse_adds_a_second_camera_into_the_same_rows(threads):
    """lidar_fusion_node's IR + colour fusion: the IR pass packs the rows, the colour pass
    (pack=False, another camera and extrinsics) writes only rgb and depth_diff where the
    colour camera sees the point; the rows equal the plain path of each camera."""
    n = 40001
    pts = _scattered_cloud(n, 5)
    inten = np.linspace(0, 100, n, dtype=np.float32)
    x, y, z = (np.ascontiguousarray(pts[:, k]) for k in range(3))
    ir_intr = Intrinsics.from_k(np.array([[380.0, 0, 320], [0, 380, 240], [0, 0, 1]]), 640, 480)
    c_intr = Intrinsics.from_k(np.array([[600.0, 0, 424], [0, 600, 240], [0, 0, 1]]), 848, 480,
                               [0.1, -0.05, 0.001, 0.0, 0.0], "plumb_bob")
    T = np.eye(4)
    to_color = np.eye(4)
    to_color[:3, 3] = [0.015, 0.0, 0.0]
    rng = np.random.default_rng(3)
    ir = rng.integers(0, 255, (480, 640)).astype(np.uint8)
    rgb = rng.integers(0, 255, (480, 848, 3)).astype(np.uint8)
    ref = rng.uniform(0.5, 40, (480, 848)).astype(np.float32)
    ref[::3] = 0.0
    rows = np.empty((n, 7), np.float32)
    Projector(ir_intr, threads=threads).fuse(x, y, z, inten, T, ir, out=rows)
    _, cproj = Projector(c_intr, threads=threads).fuse(x, y, z, None, to_color @ T, None, rgb=rgb, ref_depth=ref,
                                                       out=rows, rgb_column=5, ref_column=6, pack=False)
    want_ir, _ = _reference_rows(Projector(ir_intr), x, y, z, inten, T, ir, None, None, 6)
    want_c, p = _reference_rows(Projector(c_intr), x, y, z, inten, to_color @ T, None, rgb, ref, 6)
    np.testing.assert_array_equal(rows[:, :5].view(np.uint32), want_ir[:, :5].view(np.uint32))
    np.testing.assert_array_equal(rows[:, 5:].view(np.uint32), want_c[:, 5:7].view(np.uint32))
    np.testing.assert_array_equal(cproj.visible, p.visible)
    assert p.visible.sum() > 1000 and np.isfinite(rows[:, 6]).sum() > 500
    with pytest.raises(ValueError, match="pass them as out"):
        Projector(c_intr).fuse(x, y, z, None, T, None, rgb=rgb, pack=False)


@pytest.mark.parametrize("threads", [1, 2])
def test_fuse_leaves_a_clean_z_buffer_when_a_lookup_fails(monkeypatch, threads):
    """The z-buffer is shared from cloud to cloud: whatever stops a fusion half-way, it is
    reset (after both threads; with two, on the helper, which the next cloud waits for), and
    the next cloud fuses exactly as on a fresh Projector."""
    intr = Intrinsics.from_k(np.array([[400.0, 0, 320], [0, 400, 240], [0, 0, 1]]), 640, 480)
    n = projection.PARALLEL_MIN_POINTS + 1
    x, y, z = (np.ascontiguousarray(c) for c in _scattered_cloud(n, 9).T)
    inten = np.ones(n, np.float32)
    proj = Projector(intr, threads=threads)
    real = projection._lookup_kernel

    def failing(*args):
        raise RuntimeError("lookup failed")

    monkeypatch.setattr(projection, "_lookup_kernel", failing)
    with pytest.raises(RuntimeError, match="lookup failed"):
        proj.fuse(x, y, z, inten, np.eye(4), None)
    if proj._reset is not None:  # the helper's clean-up, which the next fuse would wait for
        proj._reset.result()
    assert np.isinf(proj._zbuf).all() and np.isinf(proj._coarse).all()
    monkeypatch.setattr(projection, "_lookup_kernel", real)
    rows, p = proj.fuse(x, y, z, inten, np.eye(4), None)
    fresh, q = Projector(intr).fuse(x, y, z, inten, np.eye(4), None)
    assert p.in_view > 1000 and p.occluded == q.occluded
    np.testing.assert_array_equal(p.visible, q.visible)


def test_the_next_cloud_waits_for_the_deferred_z_buffer_clean_up(monkeypatch):
    """With two threads the z-buffer's clean-up runs on the helper after fuse returns; a slow
    clean-up (held back 0.3 s here) must still finish before the next cloud's z-buffer pass,
    or that cloud would see the previous one's depths and fuse differently."""
    import time

    intr = Intrinsics.from_k(np.array([[400.0, 0, 320], [0, 400, 240], [0, 0, 1]]), 640, 480)
    n = projection.PARALLEL_MIN_POINTS + 1
    near = [np.ascontiguousarray(c) for c in _scattered_cloud(n, 3).T]
    far = [np.ascontiguousarray(c) for c in _scattered_cloud(n, 4).T]
    far[2] = far[2] + np.float32(20.0)  # behind every point of `near`: occluded if its depths linger
    inten = np.ones(n, np.float32)
    real = projection._reset_kernel

    def slow_reset(*args):
        time.sleep(0.3)
        real(*args)

    monkeypatch.setattr(projection, "_reset_kernel", slow_reset)
    proj = Projector(intr, threads=2)
    proj.fuse(*near, inten, np.eye(4), None)
    assert proj._reset is not None and not proj._reset.done()  # the clean-up is still pending
    _, p = proj.fuse(*far, inten, np.eye(4), None)
    _, q = Projector(intr).fuse(*far, inten, np.eye(4), None)
    assert p.in_view > 1000 and p.occluded == q.occluded
    np.testing.assert_array_equal(p.visible, q.visible)
    proj.close()


def test_fuse_rejects_a_buffer_that_does_not_fit():
    intr = Intrinsics.from_k(np.array([[400.0, 0, 320], [0, 400, 240], [0, 0, 1]]), 640, 480)
    x = np.ones(10, np.float32)
    with pytest.raises(ValueError, match="out must be float32"):
        Projector(intr).fuse(x, x, x, x, np.eye(4), None, out=np.empty((10, 4), np.float32))
    with pytest.raises(ValueError, match="ref_column"):
        Projector(intr).fuse(x, x, x, x, np.eye(4), None, ref_depth=np.zeros((480, 640), np.float32),
                             ref_column=3)
    with pytest.raises(ValueError, match="too large"):
        Projector(Intrinsics.from_k(np.eye(3), 70000, 10))
    with pytest.raises(ValueError, match="threads"):
        Projector(intr, threads=3)


# ----------------------------------------------------------------------------- distortion
@pytest.mark.parametrize("model,D", [
    ("plumb_bob", [-0.28, 0.07, 1e-3, -5e-4, 0.0]),
    ("rational_polynomial", [0.5, -0.1, 2e-4, -3e-4, 0.01, 0.8, -0.05, 0.02]),
    ("equidistant", [-0.02, 0.004, -0.003, 0.0005]),
])
def test_distortion_matches_camera_model_and_round_trips(model, D):
    K = np.array([[450.0, 0, 330.5], [0, 452.0, 238.2], [0, 0, 1]])
    cm = CameraModel(width=640, height=480, K=K, D=np.array(D), distortion_model=model)
    intr = Intrinsics.from_camera_model(cm)
    rng = np.random.default_rng(1)
    pts = np.c_[rng.uniform(-0.6, 0.6, (5000, 2)), np.ones(5000)] * rng.uniform(0.5, 30, (5000, 1))
    ours = project_points(pts, np.eye(4), intr)
    ref = cm.project(pts)
    np.testing.assert_allclose(ours, ref, atol=2e-3)  # float32 points vs float64
    back = cm.deproject(ref, pts[:, 2])  # pixel -> point through the core's undistortion
    np.testing.assert_allclose(back, pts, rtol=1e-4, atol=1e-4)


def test_strong_distortion_does_not_fold_far_points_into_the_image():
    """Beyond the polynomial's monotonic radius a point far off-axis would land mid-image."""
    K = np.array([[400.0, 0, 320], [0, 400, 240], [0, 0, 1]])
    D = np.array([-0.4, 0, 0, 0, 0])
    intr = Intrinsics.from_k(K, 640, 480, D, "plumb_bob")
    assert np.isfinite(intr.r2_max)
    far = np.array([[1.8, 0.0, 1.0], [0.0, -1.7, 1.0]], np.float32)  # ~60 deg off-axis
    folded = CameraModel(width=640, height=480, K=K, D=D).project(far.astype(np.float64))
    assert ((folded >= 0) & (folded < [640, 480])).all(), "the plain formula folds them into the image"
    proj = Projector(intr).project(far[:, 0].copy(), far[:, 1].copy(), far[:, 2].copy(), np.eye(4))
    assert proj.in_view == 0


# ----------------------------------------------------------------------------- sync
def test_sync_matches_within_slop_and_never_stalls():
    m = ApproxTimeMatcher(slop=0.02, timeout=0.1, silent_after=5.0)
    for k in range(5):
        m.add_frame(k / 30.0, f"f{k}", now=0.0)
    out = m.add_cloud(0.068, "c1", now=0.0)      # nearest frame 0.0667, a later one exists
    assert len(out) == 1 and out[0].frame == "f2" and out[0].waited == 0.0
    assert m.add_cloud(0.2, "c2", now=1.0) == []  # the camera may still deliver: wait
    assert m.poll(now=1.05) == []
    late = m.add_frame(0.2 + 0.005, "late", now=1.06)
    assert late[0].cloud == "c2" and late[0].frame == "late"
    # a late camera: the cloud goes out unmatched after the timeout, not later
    assert m.add_cloud(0.5, "c3", now=1.5) == []
    out = m.poll(now=1.5 + 0.1)
    assert out[0].cloud == "c3" and out[0].frame is None
    assert m.matched == 2 and m.unmatched == 1

    # a silent camera (no frame for silent_after): clouds go out at once, no waiting
    out = m.add_cloud(0.7, "c_silent", now=1.06 + m.silent_after)
    assert out[0].cloud == "c_silent" and out[0].frame is None and out[0].waited == 0.0
    assert ApproxTimeMatcher().add_cloud(1.0, "never", now=0.0)[0].frame is None  # no camera ever
    # a camera already past ref + slop decides at once (unmatched when the gap is too big)
    m.add_frame(1.0, "f_new", now=3.0)
    out = m.add_cloud(0.9, "c4", now=3.0)
    assert out[0].frame is None and out[0].waited == 0.0


def test_sync_time_offsets_and_bounded_backlog():
    m = ApproxTimeMatcher(slop=0.01, timeout=10.0, frame_offset=0.5, max_pending=3)
    m.add_frame(0.0, "cam", now=0.0)             # camera clock 0.0 == common 0.5
    assert m.add_cloud(0.5, "c", now=0.0)[0].frame == "cam"
    for k in range(4):
        out = m.add_cloud(5.0 + k, k, now=0.0)
    assert [o.cloud for o in out] == [0] and m.overflow == 1


# ----------------------------------------------------------------------------- motion
def test_deskew_is_exact_for_constant_twist():
    """Points of a static world seen by a sensor moving with a constant body twist; the
    reference pose exp(xi t) is a matrix power series, independent of the closed form."""

    v, w = np.array([1.2, -0.3, 0.1]), np.array([0.05, -0.1, 0.8])
    rng = np.random.default_rng(0)
    world = rng.uniform(-10, 10, (2000, 3))
    t = np.sort(rng.uniform(0, 0.1, 2000))

    def se3_exp(dt: float) -> np.ndarray:
        a = np.zeros((4, 4))
        a[:3, :3] = [[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]]
        a[:3, 3] = v
        m, term = np.eye(4), np.eye(4)
        for k in range(1, 30):
            term = term @ (a * dt) / k
            m = m + term
        return m
    local = np.stack([(np.linalg.inv(se3_exp(ti)) @ np.r_[p, 1])[:3] for p, ti in zip(world, t)])
    t_ref = 0.05
    ox, oy, oz = deskew(*(np.ascontiguousarray(local[:, i], np.float32) for i in range(3)), t, t_ref, v, w)
    expect = (np.linalg.inv(se3_exp(t_ref)) @ np.c_[world, np.ones(len(world))].T).T[:, :3]
    np.testing.assert_allclose(np.c_[ox, oy, oz], expect, atol=2e-5 * 20)  # float32 at 10-20 m


def test_twist_in_frame_of_an_offset_sensor():
    body_from_sensor = calib.from_xyz_quat([1.0, 0, 0], [0, 0, 0, 1])
    v, w = twist_in_frame([0, 0, 0], [0, 0, 1.0], body_from_sensor)
    np.testing.assert_allclose(v, [0, 1.0, 0])  # a point 1 m ahead of a turning base moves sideways
    np.testing.assert_allclose(w, [0, 0, 1.0])


@pytest.mark.parametrize("DT", [0.0, 1 / 30])
def test_motion_compensation_on_the_scene_reduces_reprojection_error(record_property, DT):
    """Built-in scene, static objects, moving robot: each LiDAR point's true pixel in the IR
    camera at the exposure time T vs its projection with and without de-skewing. T is the
    middle of the scan (the forward view is swept then) plus DT: 0, or one 30 Hz camera
    frame (an unsynchronised camera's usual offset)."""
    from depth_ai_nodes.core.scene import CameraRig, SyntheticLidar, World, lidar_to_camera

    base = World.default(seed=0)
    frozen = base.static(0.0)
    world = World(frozen.primitives, frozen.materials, base.trajectory, base.seed)  # objects still, robot moves
    lidar = SyntheticLidar(world, beams=32, columns=1024, rate_hz=10.0)
    rig = CameraRig(640, 480)
    cam_from_lidar = calib.as_matrix(lidar_to_camera(rig, lidar))
    intr = Intrinsics.from_camera_model(rig.ir_model)
    t0 = 1.3  # the robot is turning and driving here
    pts = lidar.scan(t0)
    T = t0 + 0.05 + DT
    # truth: world point of each return (sensor pose at its own time) seen from the camera at T
    world_pts = np.stack([(lidar.pose_matrix(t0 + ti) @ np.r_[x, y, z, 1.0])[:3]
                          for x, y, z, ti in zip(pts["x"], pts["y"], pts["z"], pts["t"])])
    cam_from_world_T = cam_from_lidar @ np.linalg.inv(lidar.pose_matrix(T))
    truth = project_points(world_pts, cam_from_world_T, intr)

    lin, ang = world.base_twist(T)
    v, w = twist_in_frame(lin, ang, calib.as_matrix(lidar.mount))
    raw = project_points(np.c_[pts["x"], pts["y"], pts["z"]], cam_from_lidar, intr)
    dx = deskew(pts["x"], pts["y"], pts["z"], pts["t"], T - t0, v, w)
    comp = project_points(np.c_[dx], cam_from_lidar, intr)
    ok = np.isfinite(truth).all(1) & (truth[:, 0] > 0) & (truth[:, 0] < 639) & (truth[:, 1] > 0) \
        & (truth[:, 1] < 479) & np.isfinite(raw).all(1)
    assert ok.sum() > 1000
    e_raw = np.linalg.norm(raw[ok] - truth[ok], axis=1)
    e_comp = np.linalg.norm(comp[ok] - truth[ok], axis=1)
    figures = {"points": int(ok.sum()), "raw_median_px": float(np.median(e_raw)),
               "raw_p95_px": float(np.percentile(e_raw, 95)),
               "comp_median_px": float(np.median(e_comp)), "comp_p95_px": float(np.percentile(e_comp, 95))}
    record_property("motion_compensation", figures)
    print("motion compensation reprojection error:", figures)
    assert figures["raw_p95_px"] > (0.3 if DT == 0 else 1.0), "the scene must move enough to matter"
    assert figures["comp_p95_px"] < 0.25 * figures["raw_p95_px"]
    assert figures["comp_median_px"] < 0.1
