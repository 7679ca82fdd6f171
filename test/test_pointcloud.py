"""Depth -> points and PointCloud2 buffers read by name and offset, ROS-free."""
from __future__ import annotations

import numpy as np
import pyrealsense2 as rs
import pytest

from depth_ai_nodes.core.camera_model import CameraModel
from depth_ai_nodes.core.pointcloud import (FLOAT32, FLOAT64, UINT16, FieldSpec, PointCloudFormatError,
                                            depth_to_points, depth_to_xyzrgb, pack, pack_rgb, unpack, unpack_rgb)
from depth_ai_nodes.core.transforms import RigidTransform
from rs_reference import RsAligner, scene_depth

MODEL = CameraModel(640, 480, np.array([[390.4, 0, 321.7], [0, 390.6, 238.2], [0, 0, 1]]),
                    frame_id="camera_depth_optical_frame")


def test_depth_to_points_matches_rs_pointcloud():
    """Unorganized XYZ equals librealsense's rs.pointcloud on the same frame (valid pixels)."""
    depth = scene_depth(MODEL, 0)
    ref = RsAligner(MODEL, MODEL, RigidTransform.identity())
    try:
        fs = ref.frameset(depth)
        pc = rs.pointcloud()
        v = np.asanyarray(pc.calculate(fs.get_depth_frame()).get_vertices()).view(np.float32).reshape(480, 640, 3)
        v = v.copy()
    finally:
        ref.close()
    ours = depth_to_points(depth, MODEL)
    valid = depth > 0
    assert ours.shape == (valid.sum(), 3) and ours.dtype == np.float32
    assert np.abs(ours - v[valid]).max() < 1e-5
    org = depth_to_points(depth, MODEL, organized=True)
    assert org.shape == (480, 640, 3) and np.isnan(org[~valid]).all()
    assert np.allclose(org[valid], ours)


def test_stride_and_float_depth():
    depth = scene_depth(MODEL, 1)
    d_m = np.where(depth > 0, depth * 0.001, np.nan).astype(np.float32)
    a = depth_to_points(depth, MODEL, stride=4, organized=True)
    b = depth_to_points(d_m, MODEL, stride=4, organized=True)
    assert a.shape == (120, 160, 3)
    assert np.allclose(a, b, equal_nan=True)
    full = depth_to_points(depth, MODEL, organized=True)
    assert np.allclose(a, full[::4, ::4], equal_nan=True)
    with pytest.raises(ValueError, match="does not match the camera model 640x480"):
        depth_to_points(depth[:100], MODEL)


def test_xyzrgb_registered_and_projected():
    depth = np.full((480, 640), 2000, np.uint16)
    depth[0, 0] = 0
    color = np.zeros((480, 640, 3), np.uint8)
    color[..., 0], color[..., 1], color[..., 2] = 200, 100, 50
    pts, rgb = depth_to_xyzrgb(depth, MODEL, color)
    assert len(pts) == len(rgb) == 640 * 480 - 1
    r, g, b = unpack_rgb(rgb)
    assert (r == 200).all() and (g == 100).all() and (b == 50).all()
    # a colour camera with another geometry: points project into it; outside -> black
    cm = MODEL.resized(1280, 720)
    big = np.zeros((720, 1280, 3), np.uint8)
    big[:, 640:] = [0, 255, 0]                    # right half green
    pts, rgb = depth_to_xyzrgb(depth, MODEL, big, cm, RigidTransform(np.eye(3), [0.5, 0, 0]))
    r, g, b = unpack_rgb(rgb)
    uv = cm.project(pts + [0.5, 0.0, 0.0])
    inside = (uv[:, 0] < 1279) & (uv[:, 1] > 0) & (uv[:, 1] < 719)
    right = inside & (uv[:, 0] > 641)
    assert right.sum() > 10000 and (~inside).sum() > 10000
    assert (g[right] == 255).all() and (g[inside & (uv[:, 0] < 639)] == 0).all()
    assert (g[~inside & (uv[:, 0] > 1281)] == 0).all()   # off the colour image: black


def test_pack_rgb_convention():
    f = pack_rgb(np.array([255, 1]), np.array([0, 2]), np.array([16, 3]))
    assert f.dtype == np.float32
    assert f.view(np.uint32).tolist() == [0xFF0010, 0x010203]
    r, g, b = unpack_rgb(f)
    assert r.tolist() == [255, 1] and g.tolist() == [0, 2] and b.tolist() == [16, 3]


def test_pack_unpack_round_trip_natural_layout():
    n = 50
    rng = np.random.default_rng(0)
    fields = {"x": rng.normal(size=n).astype(np.float32), "y": rng.normal(size=n).astype(np.float32),
              "z": rng.normal(size=n).astype(np.float32), "intensity": rng.random(n).astype(np.float32),
              "ring": rng.integers(0, 64, n).astype(np.uint16), "t": rng.random(n)}
    packed = pack(fields)
    specs, step, data = packed
    count, dense = packed.count, packed.is_dense
    assert packed.specs is specs and packed.data is data and packed.point_step == step
    assert [s.offset for s in specs] == [0, 4, 8, 12, 16, 18] and step == 26 and count == n and dense
    assert [s.datatype for s in specs][-2:] == [UINT16, FLOAT64]
    back = unpack(specs, step, data, count=n)
    for k, v in fields.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v)


def test_unpack_any_point_step_and_order():
    """A driver layout: 32-byte points, rgb before xyz, padding between fields."""
    n = 10
    raw = np.zeros((n, 32), np.uint8)
    xyz = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    rgb = pack_rgb(np.full(n, 9), np.full(n, 8), np.full(n, 7))
    raw[:, 16:28] = xyz.view(np.uint8).reshape(n, 12)
    raw[:, 4:8] = rgb.view(np.uint8).reshape(n, 4)
    specs = [FieldSpec("rgb", 4, FLOAT32, 1), FieldSpec("x", 16, FLOAT32, 1), FieldSpec("y", 20, FLOAT32, 1),
             FieldSpec("z", 24, FLOAT32, 1)]
    out = unpack(specs, 32, raw.tobytes(), names=["x", "y", "z", "rgb"], count=n)
    assert np.array_equal(np.stack([out["x"], out["y"], out["z"]], 1), xyz)
    assert unpack_rgb(out["rgb"])[0].tolist() == [9] * n
    specs2, step, data = pack({"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}, point_step=16)
    assert step == 16 and len(data) == 16 * n
    assert np.array_equal(unpack(specs2, step, data)["z"], xyz[:, 2])


def test_big_endian_and_count_fields():
    v = np.arange(6, dtype=np.float32).reshape(3, 2)
    data = v.astype(">f4").tobytes()
    out = unpack([FieldSpec("normal", 0, FLOAT32, 2)], 8, data, is_bigendian=True)
    assert out["normal"].shape == (3, 2) and np.array_equal(out["normal"], v)


def test_is_dense_and_drop_invalid():
    x = np.array([0.0, np.nan, 2.0], np.float32)
    fields = {"x": x, "y": np.zeros(3, np.float32), "z": np.ones(3, np.float32)}
    p = pack(fields)
    assert p.count == 3 and not p.is_dense
    p = pack(fields, drop_invalid=True)
    assert p.count == 2 and p.is_dense and len(p.data) == 2 * p.point_step
    specs, step, data = pack(fields)
    assert len(unpack(specs, step, data, drop_invalid=True)["x"]) == 2
    assert len(unpack(specs, step, data)["x"]) == 3


def test_errors_name_the_problem():
    specs = [FieldSpec("x", 0, FLOAT32, 1), FieldSpec("y", 4, FLOAT32, 1)]
    with pytest.raises(PointCloudFormatError, match="has no field 'z'; it has x, y"):
        unpack(specs, 8, b"\0" * 16, names=["z"])
    with pytest.raises(PointCloudFormatError, match=r"data has 15 bytes; 2 points of 8 bytes need 16"):
        unpack(specs, 8, b"\0" * 15, count=2)
    with pytest.raises(PointCloudFormatError, match=r"field 'y' \(offset 4, 4 bytes\) does not fit in point_step 6"):
        unpack(specs, 6, b"\0" * 12)
    with pytest.raises(PointCloudFormatError, match="unknown PointField datatype 9"):
        unpack([FieldSpec("x", 0, 9, 1)], 8, b"\0" * 8)
    with pytest.raises(PointCloudFormatError, match="field 'y' has 2 points; the first field has 3"):
        pack({"x": np.zeros(3, np.float32), "y": np.zeros(2, np.float32)})
    with pytest.raises(PointCloudFormatError, match="point_step 4 is smaller than the fields need"):
        pack({"x": np.zeros(3, np.float32), "y": np.zeros(3, np.float32)}, point_step=4)
    with pytest.raises(PointCloudFormatError, match="dtype complex64"):
        pack({"x": np.zeros(3, np.complex64)})
