"""RigidTransform: algebra, quaternions, librealsense column-major extrinsics; FrameTree lookups."""
from __future__ import annotations

import numpy as np
import pyrealsense2 as rs
import pytest

from depth_ai_nodes.core.transforms import FrameTree, RigidTransform, matrix_to_quaternion, quaternion_to_matrix


def _random(seed: int) -> RigidTransform:
    rng = np.random.default_rng(seed)
    q = rng.normal(size=4)
    return RigidTransform.from_xyz_quat(rng.normal(size=3), q / np.linalg.norm(q))


def test_inverse_compose_apply():
    a, b = _random(0), _random(1)
    pts = np.random.default_rng(2).normal(size=(100, 3))
    assert np.allclose((a @ b).apply(pts), a.apply(b.apply(pts)))
    assert (a @ a.inverse()).almost_equal(RigidTransform.identity())
    assert np.allclose(a.inverse().apply(a.apply(pts)), pts)
    assert np.allclose(RigidTransform.from_matrix(a.matrix()).matrix(), a.matrix())
    assert np.allclose(a.compose(b).matrix(), a.matrix() @ b.matrix())
    assert a.apply(pts.astype(np.float32)).dtype == np.float32


def test_quaternion_round_trip_and_known_rotation():
    for seed in range(20):
        t = _random(seed)
        xyz, q = t.to_xyz_quat()
        assert q[3] >= 0 and np.isclose(np.linalg.norm(q), 1)
        assert RigidTransform.from_xyz_quat(xyz, q).almost_equal(t)
    # 90 degrees about z: x -> y
    r = quaternion_to_matrix([0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)])
    assert np.allclose(r @ [1, 0, 0], [0, 1, 0])
    # the REP-103 optical frame rotation (link -> optical) as realsense-ros publishes it
    q = matrix_to_quaternion(np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float))
    assert np.allclose(q, [-0.5, 0.5, -0.5, 0.5])
    with pytest.raises(ValueError, match="non-zero"):
        quaternion_to_matrix([0, 0, 0, 0])


def test_constructors_accept_matrix_and_validate():
    t = _random(3)
    assert RigidTransform(t.matrix()).almost_equal(t)
    assert np.allclose(t.translation, t.t) and np.allclose(t.rotation, t.R)
    assert np.allclose(t.quaternion_xyzw, t.to_xyz_quat()[1])
    with pytest.raises(ValueError, match="orthonormal"):
        RigidTransform(np.eye(3) * 2, [0, 0, 0])
    with pytest.raises(ValueError, match="4x4"):
        RigidTransform.from_matrix(np.eye(3))
    with pytest.raises(ValueError, match="3 elements"):
        RigidTransform(np.eye(3), [1, 2])


def test_rs_extrinsics_are_column_major():
    """librealsense: to_point = R * from_point + t with `rotation` stored column-major."""
    t = _random(4)
    rot, trans = t.to_rs_extrinsics()
    ext = rs.extrinsics()
    ext.rotation, ext.translation = rot, trans
    p = [0.3, -0.2, 1.7]
    assert np.allclose(rs.rs2_transform_point_to_point(ext, p), t.apply(np.array([p]))[0], atol=1e-5)
    assert RigidTransform.from_rs_extrinsics(rot, trans).almost_equal(t, 1e-6)
    assert RigidTransform.from_rs_extrinsics(ext).almost_equal(t, 1e-6)
    assert np.allclose(np.reshape(rot, (3, 3)), t.R.T)


def test_frame_tree_chains_through_the_common_ancestor_like_tf2():
    # base_link -> camera_link -> camera_color_optical_frame, base_link -> lidar_link
    base_cam, cam_opt, base_lidar = _random(10), _random(11), _random(12)
    tree = FrameTree()
    tree.set("base_link", "camera_link", base_cam)
    tree.set("camera_link", "camera_color_optical_frame", cam_opt)
    tree.set("base_link", "lidar_link", base_lidar)
    pts = np.random.default_rng(3).normal(size=(50, 3))
    # points in lidar_link -> the optical frame, composed by hand from the edges
    expected = cam_opt.inverse().apply(base_cam.inverse().apply(base_lidar.apply(pts)))
    got = tree.lookup("camera_color_optical_frame", "lidar_link")
    assert np.allclose(got.apply(pts), expected)
    assert tree.lookup("lidar_link", "camera_color_optical_frame").almost_equal(got.inverse())
    assert tree.lookup("base_link", "camera_color_optical_frame").almost_equal(base_cam @ cam_opt)
    assert tree.lookup("lidar_link", "lidar_link").almost_equal(RigidTransform.identity())
    # a newer transform for the same child replaces the old one (a new /tf_static)
    tree.set("base_link", "lidar_link", RigidTransform(t=[1.0, 2.0, 3.0]))
    assert np.allclose(tree.lookup("base_link", "lidar_link").t, [1, 2, 3])


def test_frame_tree_errors_name_the_frames():
    tree = FrameTree()
    tree.set("a", "b", _random(0))
    tree.set("c", "d", _random(1))
    with pytest.raises(LookupError, match="no transform between 'a' and 'd'.*frames known: a, b, c, d"):
        tree.lookup("a", "d")
    with pytest.raises(ValueError, match="two different frame ids"):
        tree.set("a", "a", _random(2))
    tree.set("b", "c", _random(3))
    tree.set("d", "a", _random(4))  # a -> b -> c -> d -> a
    with pytest.raises(ValueError, match="loop"):
        tree.lookup("a", "c")


def test_a_projection_matrix_is_decomposed_and_a_matrix_that_is_neither_is_named():
    from depth_ai_nodes.core.calibration import CalibrationError, interpret_matrix

    k = np.array([[700.0, 0, 620], [0, 710.0, 190], [0, 0, 1]])
    ang = 0.3
    rot = np.array([[np.cos(ang), 0, np.sin(ang)], [0, 1, 0], [-np.sin(ang), 0, np.cos(ang)]])
    rigid = np.eye(4)
    rigid[:3, :3], rigid[:3, 3] = rot, [0.1, -0.2, 0.3]
    p = k @ rigid[:3]
    t, kk = interpret_matrix(2.5 * p.ravel())            # projections are defined up to scale
    np.testing.assert_allclose(kk, k, atol=1e-9)
    np.testing.assert_allclose(t, rigid, atol=1e-9)
    t2, none = interpret_matrix(rigid.ravel())            # a rigid 4x4 stays one
    assert none is None and np.allclose(t2, rigid)
    with pytest.raises(CalibrationError, match="got 7"):
        interpret_matrix(np.ones(7))
    with pytest.raises(CalibrationError, match="neither a rigid transform .* nor a projection"):
        interpret_matrix(np.r_[np.ones(8), np.zeros(4)])  # rank-deficient
