"""CameraModel: projection round trips through distortion, geometry changes, librealsense parity."""
from __future__ import annotations

import numpy as np
import pyrealsense2 as rs
import pytest

from depth_ai_nodes.core.camera_model import CameraModel
from depth_ai_nodes.core.transforms import RigidTransform
from rs_reference import RsAligner, scene_depth

K = np.array([[615.0, 0.0, 322.5], [0.0, 614.0, 238.25], [0.0, 0.0, 1.0]])
MODELS = {
    "pinhole": CameraModel(640, 480, K, D=np.zeros(5)),
    "plumb_bob": CameraModel(640, 480, K, D=[-0.28, 0.09, 0.0012, -0.0007, -0.012]),
    "rational_polynomial": CameraModel(640, 480, K, D=[0.6, -0.05, 0.001, -0.0005, -0.02, 0.95, 0.05, -0.03],
                                       distortion_model="rational_polynomial"),
    "equidistant": CameraModel(640, 480, K, D=[0.02, -0.01, 0.003, -0.001], distortion_model="equidistant"),
}


def _pixels(model: CameraModel, n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(0, model.width - 1, n), rng.uniform(0, model.height - 1, n)], axis=1)


@pytest.mark.parametrize("name", list(MODELS))
def test_deproject_project_round_trip(name):
    m = MODELS[name]
    uv = _pixels(m)
    z = np.random.default_rng(1).uniform(0.3, 8.0, len(uv))
    p = m.deproject(uv, z)
    assert np.allclose(p[:, 2], z)
    assert np.abs(m.project(p) - uv).max() < 1e-6


@pytest.mark.parametrize("name", list(MODELS))
def test_undistort_inverts_distort(name):
    m = MODELS[name]
    xy = m.undistort_points(_pixels(m, seed=2))
    d = m.distort(xy)
    uv = np.stack([d[:, 0] * m.fx + m.cx, d[:, 1] * m.fy + m.cy], axis=1)
    assert np.abs(uv - _pixels(m, seed=2)).max() < 1e-6


def test_distortion_matches_opencv_formula():
    """plumb_bob: the OpenCV formula written out by hand for one point."""
    m = MODELS["plumb_bob"]
    k1, k2, p1, p2, k3 = m.D
    x, y = 0.31, -0.22
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    uv = m.project(np.array([[x * 2.0, y * 2.0, 2.0]]))[0]
    assert np.allclose(uv, [m.fx * xd + m.cx, m.fy * yd + m.cy], atol=1e-9)
    assert np.isnan(m.project(np.array([[0.1, 0.1, -1.0]]))).all()  # behind the camera


def test_ray_grid_is_cached_pixel_centers():
    m = MODELS["plumb_bob"].copy()
    g = m.ray_grid()
    assert g.shape == (480, 640, 2) and g.dtype == np.float32 and m.ray_grid() is g
    assert not g.flags.writeable
    uv = np.array([[0.0, 0.0], [639.0, 479.0], [320.0, 200.0]])
    xy = m.undistort_points(uv)
    assert np.allclose(g[uv[:, 1].astype(int), uv[:, 0].astype(int)], xy, atol=1e-6)


def test_scaled_resized_cropped():
    m = MODELS["pinhole"]
    half = m.scaled(0.5)
    assert (half.width, half.height) == (320, 240)
    # pixel-area convention: the image corner (-0.5, -0.5) stays the corner
    assert np.isclose(half.cx, (m.cx + 0.5) * 0.5 - 0.5) and np.isclose(half.fx, m.fx / 2)
    p = m.deproject(np.array([[100.0, 50.0]]), 3.0)
    assert np.allclose(half.project(p), (np.array([[100.0, 50.0]]) + 0.5) * 0.5 - 0.5)
    r = m.resized(1280, 720)
    assert (r.width, r.height) == (1280, 720) and np.isclose(r.fy, m.fy * 1.5)
    c = m.cropped(100, 40, 320, 200)
    assert (c.width, c.height) == (320, 200)
    assert np.allclose(c.project(p), m.project(p) - [100, 40])
    with pytest.raises(ValueError, match="does not fit"):
        m.cropped(400, 0, 320, 200)


def test_decimated_matches_librealsense_decimation_filter():
    """Sizes and intrinsics of rs.decimation_filter output on real librealsense frames."""
    for w, h in ((640, 480), (1280, 720), (848, 480)):
        dm = CameraModel(w, h, np.array([[390.4 * w / 640, 0, w / 2 + 3.3], [0, 390.7 * w / 640, h / 2 - 1.1],
                                         [0, 0, 1]]))
        ref = RsAligner(dm, dm, RigidTransform.identity())
        try:
            fs = ref.frameset(scene_depth(dm))
            for mag in (2, 3, 4, 5, 8):
                dec = rs.decimation_filter()
                dec.set_option(rs.option.filter_magnitude, mag)
                f = dec.process(fs.get_depth_frame()).as_video_frame()
                i = f.profile.as_video_stream_profile().get_intrinsics()
                ours = dm.decimated(mag)
                assert (ours.width, ours.height) == (f.get_width(), f.get_height()) == (i.width, i.height)
                assert np.allclose([ours.fx, ours.fy, ours.cx, ours.cy], [i.fx, i.fy, i.ppx, i.ppy], atol=1e-4)
        finally:
            ref.close()
    assert MODELS["pinhole"].decimated(1) == MODELS["pinhole"]


def test_from_rs_intrinsics_maps_models():
    for rs_name, ros_name in (("brown_conrady", "plumb_bob"), ("inverse_brown_conrady", "plumb_bob"),
                              ("modified_brown_conrady", "plumb_bob"), ("none", "plumb_bob"),
                              ("kannala_brandt4", "equidistant")):
        i = rs.intrinsics()
        i.width, i.height, i.fx, i.fy, i.ppx, i.ppy = 848, 480, 421.5, 421.0, 424.2, 239.7
        i.model = getattr(rs.distortion, rs_name)
        i.coeffs = [0.01, -0.02, 0.001, 0.002, 0.003]
        m = CameraModel.from_rs_intrinsics(i, frame_id="camera_color_optical_frame")
        assert m.distortion_model == ros_name and m.rs_model == rs_name
        assert (m.width, m.height, m.fx, m.cy) == (848, 480, pytest.approx(421.5), pytest.approx(239.7))
        assert m.frame_id == "camera_color_optical_frame"
        assert len(m.D) == (4 if ros_name == "equidistant" else 5)
        back = m.to_rs_intrinsics()
        assert str(back.model) == str(i.model) and np.isclose(back.ppx, i.ppx)


def test_rs_pinhole_projection_agrees():
    """rs.rs2_project_point_to_pixel / deproject on an undistorted stream agree with ours."""
    i = rs.intrinsics()
    i.width, i.height, i.fx, i.fy, i.ppx, i.ppy = 640, 480, 390.4, 390.6, 321.2, 238.9
    i.model, i.coeffs = rs.distortion.none, [0.0] * 5
    m = CameraModel.from_rs_intrinsics(i)
    for uv, z in (([10.0, 20.0], 1.5), ([600.5, 470.25], 3.0)):
        p_rs = rs.rs2_deproject_pixel_to_point(i, uv, z)
        assert np.allclose(m.deproject(np.array([uv]), z)[0], p_rs, atol=1e-5)
        assert np.allclose(m.project(np.array([p_rs]))[0], rs.rs2_project_point_to_pixel(i, p_rs), atol=1e-3)


def test_validation_messages():
    with pytest.raises(ValueError, match="unsupported distortion model 'fisheye'"):
        CameraModel(640, 480, K, distortion_model="fisheye")
    with pytest.raises(ValueError, match="positive finite fx"):
        CameraModel(640, 480, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="size must be positive"):
        CameraModel(0, 480, K)
    with pytest.raises(ValueError, match="plumb_bob takes 5"):
        CameraModel(640, 480, K, D=[0, 0, 0, 0, 0, 0.5, 0, 0])
