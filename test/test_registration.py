"""Depth registration (core/registration.py) against librealsense's own rs.align, same frames.

The reference is real pyrealsense2: a software_device camera carrying the calibration, frames
injected and synchronized by rs.syncer, aligned by rs.align(rs.stream.color) (test/rs_reference.py);
plus the real D435 recording in ../shared/data/realsense/.
"""
from __future__ import annotations

import numpy as np
import pyrealsense2 as rs
import pytest

from depth_ai_nodes.core.camera_model import CameraModel
from depth_ai_nodes.core.registration import DepthRegistration, align_depth_to_color, splats
from depth_ai_nodes.core.transforms import RigidTransform, quaternion_to_matrix
from rs_reference import RsAligner, scene_depth

T_D435 = RigidTransform(quaternion_to_matrix([0.0001, -0.0065, 0.0052, 1.0]), [0.0143, 0.0006, 0.0006])
D_DIST = [0.12, -0.25, 0.001, -0.002, 0.1]


def _model(width: int, height: int, fx640: float, rs_model: str = "brown_conrady", D=None) -> CameraModel:
    s = width / 640.0
    k = np.array([[fx640 * s, 0, width / 2 + 11.3 * s], [0, fx640 * s * 1.0005, height / 2 + 2.2 * s], [0, 0, 1]])
    return CameraModel(width, height, k, D=D, rs_model=rs_model)


def _agreement(dm: CameraModel, cm: CameraModel, T: RigidTransform, seeds=(0, 1)) -> tuple[float, float]:
    """(fraction of identical pixels, fraction of valid pixels) over frames of realistic depth."""
    ref = RsAligner(dm, cm, T)
    ours = DepthRegistration(dm, cm, T)
    try:
        same, valid = [], []
        for seed in seeds:
            d = scene_depth(dm, seed)
            a = ref.align(d)
            b = ours.align(d)
            assert a.shape == b.shape == (cm.height, cm.width) and b.dtype == np.uint16
            same.append(float((a == b).mean()))
            valid.append(float((a > 0).mean()))
        return min(same), min(valid)
    finally:
        ref.close()


@pytest.mark.parametrize("dsize,csize", [((640, 480), (640, 480)), ((640, 480), (1280, 720)),
                                         ((1280, 720), (640, 480)), ((640, 480), (640, 360))],
                         ids=["equal", "depth640-color1280", "depth1280-color640", "special-640x360"])
def test_parity_with_rs_align_resolutions(dsize, csize):
    dm = _model(*dsize, 390.4 if dsize[0] == 640 else 640.0)
    cm = _model(*csize, 613.2, "inverse_brown_conrady")
    same, valid = _agreement(dm, cm, T_D435)
    assert valid > 0.5, "the reference frames must be mostly valid depth to mean anything"
    assert same >= 0.999, f"{same * 100:.3f} % identical pixels"


def test_both_splat_rules_are_exercised():
    assert splats(_model(640, 480, 390.4), _model(1280, 720, 613.2))        # coarser depth: rectangles
    assert not splats(_model(1280, 720, 640.0), _model(640, 480, 613.2))    # finer depth: one pixel
    assert splats(_model(640, 480, 613.2), _model(640, 360, 613.2))         # librealsense special case


@pytest.mark.parametrize("depth_rs,color_rs", [("brown_conrady", "modified_brown_conrady"),
                                               ("inverse_brown_conrady", "inverse_brown_conrady"),
                                               ("brown_conrady", "brown_conrady")])
def test_parity_with_rs_align_distortion_models(depth_rs, color_rs):
    dm = _model(640, 480, 390.4, depth_rs, D_DIST)
    cm = _model(640, 480, 613.2, color_rs, D_DIST)
    same, _ = _agreement(dm, cm, T_D435, seeds=(3,))
    assert same >= 0.999, f"{depth_rs}->{color_rs}: {same * 100:.3f} % identical pixels"


def test_depth_to_ir_identity_extrinsics():
    """depth -> infra1 on a RealSense: same intrinsics, identity extrinsics (t_z = 0 must not divide by 0)."""
    dm = _model(640, 480, 390.4)
    same, _ = _agreement(dm, dm, RigidTransform.identity(), seeds=(4,))
    assert same >= 0.999
    d = scene_depth(dm, 4)
    out = DepthRegistration(dm, dm.copy(), RigidTransform.identity()).align(d)
    # identity geometry: nearly the input itself (librealsense truncation shifts a few pixels by one)
    assert (out == d).mean() > 0.9


def test_real_d435_recording(shared_data):
    bag = shared_data / "realsense" / "d435_single_depth_color_640x480.bag"
    pipe, cfg = rs.pipeline(), rs.config()
    cfg.enable_device_from_file(str(bag), repeat_playback=False)
    profile = pipe.start(cfg)
    try:
        profile.get_device().as_playback().set_real_time(False)
        scale = profile.get_device().first_depth_sensor().get_depth_scale()
        fs = None
        for _ in range(10):
            ok, f = pipe.try_wait_for_frames(2000)
            if not ok:
                break
            if f.get_depth_frame() and f.get_color_frame():
                fs = f
                break
        assert fs is not None, "the recording holds a depth + color frameset"
        dprof = fs.get_depth_frame().profile.as_video_stream_profile()
        cprof = fs.get_color_frame().profile.as_video_stream_profile()
        dm = CameraModel.from_rs_intrinsics(dprof.get_intrinsics())
        cm = CameraModel.from_rs_intrinsics(cprof.get_intrinsics())
        T = RigidTransform.from_rs_extrinsics(dprof.get_extrinsics_to(cprof))
        depth = np.asanyarray(fs.get_depth_frame().get_data()).copy()
        expected = np.asanyarray(rs.align(rs.stream.color).process(fs).get_depth_frame().get_data()).copy()
    finally:
        pipe.stop()
    assert abs(T.t[0] - 0.0143) < 1e-3 and (depth > 0).mean() > 0.9
    ours = DepthRegistration(dm, cm, T, depth_scale=scale).align(depth)
    same = float((ours == expected).mean())
    assert (expected > 0).mean() > 0.5
    assert same >= 0.999, f"{same * 100:.3f} % identical pixels on the real D435 frame"


def test_opencv_models_follow_geometry():
    """Models from a ROS CameraInfo (no librealsense name) use the full OpenCV distortion:
    a point seen by depth lands where the colour model projects it."""
    dm = CameraModel(640, 480, np.array([[390.0, 0, 321.0], [0, 390.0, 239.0], [0, 0, 1]]),
                     D=[-0.05, 0.02, 0.0005, -0.0003, 0.0])
    cm = CameraModel(640, 480, np.array([[610.0, 0, 322.0], [0, 611.0, 240.5], [0, 0, 1]]),
                     D=[0.15, -0.3, 0.001, 0.0005, 0.12])
    depth = np.full((480, 640), 2000, np.uint16)   # a wall at 2 m
    depth[200:280, 250:390] = 900                  # a box in front of it
    out = DepthRegistration(dm, cm, T_D435).align(depth)
    rng = np.random.default_rng(0)
    uv = np.stack([rng.uniform(260, 380, 200), rng.uniform(210, 270, 200)], axis=1).round()
    p = dm.deproject(uv, 0.9)
    uvc = np.rint(cm.project(T_D435.apply(p))).astype(int)
    hits = out[uvc[:, 1], uvc[:, 0]]
    assert (hits == 900).mean() > 0.97


def test_nearest_depth_wins_and_zero_is_no_depth():
    dm = _model(640, 480, 390.4)
    cm = _model(1280, 720, 613.2)
    depth = np.zeros((480, 640), np.uint16)
    depth[100:300, 100:300] = 3000
    depth[150:250, 150:250] = 1000                 # a near object in front of the far one
    out = DepthRegistration(dm, cm, T_D435).align(depth)
    assert set(np.unique(out)) <= {0, 1000, 3000}
    assert (out == 0).mean() > 0.5                 # holes stay 0 (REP-118 invalid)
    near_only = np.zeros_like(depth)
    near_only[150:250, 150:250] = 1000
    covered = DepthRegistration(dm, cm, T_D435).align(near_only) > 0
    assert covered.sum() > 10000
    assert (out[covered] == 1000).all()           # wherever the near object lands, it wins


def test_cached_helper_and_input_errors():
    dm, cm = _model(640, 480, 390.4), _model(640, 480, 613.2)
    d = scene_depth(dm, 5)
    a = align_depth_to_color(d, dm, cm, T_D435)
    b = align_depth_to_color(d, dm, cm, T_D435)
    assert np.array_equal(a, b)
    reg = DepthRegistration(dm, cm, T_D435)
    with pytest.raises(ValueError, match="uint16 depth of 640x480"):
        reg.align(d.astype(np.float32))
    with pytest.raises(ValueError, match="uint16 depth of 640x480"):
        reg.align(d[:240])
    out = np.ones((480, 640), np.uint16)
    assert reg.align(d, out=out) is out and np.array_equal(out, a)


def test_parity_on_built_in_scene_frames():
    """The camera node's own input: rendered scene depth with the rig calibration."""
    from depth_ai_nodes.core.scene import CameraRig, SyntheticCamera, World

    rig = CameraRig(640, 480, fps=30)
    cam = SyntheticCamera(World.default(seed=0), rig, seed=0)
    ref = RsAligner(rig.depth_model, rig.color_model, rig.depth_to_color)
    ours = DepthRegistration(rig.depth_model, rig.color_model, rig.depth_to_color)
    try:
        for k in (0, 15):
            d = cam.render(k / 30.0, frame_index=k).depth_mm
            assert (d > 0).mean() > 0.5
            same = float((ref.align(d) == ours.align(d)).mean())
            assert same >= 0.999, f"frame {k}: {same * 100:.3f} % identical"
    finally:
        ref.close()
