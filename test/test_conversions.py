"""ros/conversions.py: numpy/core types <-> real ROS messages, through rclpy serialization (CDR)."""
from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image, PointField

from depth_ai_nodes.core.camera_model import CameraModel
from depth_ai_nodes.core.image_codec import ImageFormatError
from depth_ai_nodes.core.pointcloud import PointCloudFormatError, unpack_rgb
from depth_ai_nodes.core.transforms import RigidTransform
from depth_ai_nodes.msg import Extrinsics
from depth_ai_nodes.ros import conversions as conv


def _wire(msg):
    """Through CDR and back, as a subscriber in another process receives it."""
    return deserialize_message(serialize_message(msg), type(msg))


def test_stamps():
    ns = 1_700_000_123_456_789_012
    t = conv.ns_to_stamp(ns)
    assert (t.sec, t.nanosec) == (1_700_000_123, 456_789_012) and conv.stamp_to_ns(t) == ns
    with pytest.raises(ValueError, match="negative"):
        conv.ns_to_stamp(-1)


@pytest.mark.parametrize("encoding,dtype,channels", [("mono8", np.uint8, 1), ("mono16", np.uint16, 1),
                                                     ("16UC1", np.uint16, 1), ("32FC1", np.float32, 1),
                                                     ("rgb8", np.uint8, 3), ("bgr8", np.uint8, 3),
                                                     ("rgba8", np.uint8, 4), ("bgra8", np.uint8, 4),
                                                     ("8UC1", np.uint8, 1), ("8UC3", np.uint8, 3)])
def test_image_round_trip(encoding, dtype, channels):
    rng = np.random.default_rng(0)
    shape = (48, 64) if channels == 1 else (48, 64, channels)
    a = (rng.random(shape) * 1000).astype(dtype)
    msg = conv.array_to_image(a, encoding, frame_id="camera_color_optical_frame", stamp=123_000_000_456)
    assert isinstance(msg.data, (bytes, bytearray)) or msg.data.typecode == "B"
    got = _wire(msg)
    assert (got.encoding, got.width, got.height, got.header.frame_id) == (encoding, 64, 48,
                                                                           "camera_color_optical_frame")
    assert conv.stamp_to_ns(got.header.stamp) == 123_000_000_456
    b = conv.image_to_array(got)
    assert b.dtype == a.dtype and np.array_equal(b, a)
    assert np.shares_memory(b, np.frombuffer(got.data, np.uint8))  # zero-copy read


def test_image_refill_in_place():
    """A published message refilled with the next frame reuses its data buffer (one copy, no
    allocation); a new size, non-contiguous or big-endian input still comes out right."""
    rng = np.random.default_rng(1)
    first = rng.integers(0, 65535, (48, 64), dtype=np.uint16)
    msg = conv.array_to_image(first, "16UC1", frame_id="a")
    buf = msg.data
    second = rng.integers(0, 65535, (48, 128), dtype=np.uint16)[:, ::2]  # strided view
    assert conv.array_to_image(second, "16UC1", frame_id="b", stamp=5, out=msg) is msg
    assert msg.data is buf and msg.header.frame_id == "b" and conv.stamp_to_ns(msg.header.stamp) == 5
    assert np.array_equal(conv.image_to_array(_wire(msg)), second)
    conv.array_to_image(second.astype(">u2"), "16UC1", out=msg)
    assert msg.data is buf and np.array_equal(conv.image_to_array(_wire(msg)), second)
    rgb = rng.integers(0, 255, (10, 20, 3), dtype=np.uint8)
    conv.array_to_image(rgb, "rgb8", out=msg)  # another size: a new buffer
    got = _wire(msg)
    assert (got.encoding, got.step) == ("rgb8", 60) and np.array_equal(conv.image_to_array(got), rgb)


def test_image_padded_and_big_endian_message():
    a = np.arange(12, dtype=np.uint16).reshape(3, 4)
    msg = Image(height=3, width=4, encoding="16UC1", is_bigendian=1, step=10)
    raw = np.zeros((3, 10), np.uint8)
    raw[:, :8] = np.frombuffer(a.astype(">u2").tobytes(), np.uint8).reshape(3, 8)
    msg.data = raw.tobytes()
    assert np.array_equal(conv.image_to_array(_wire(msg)), a)
    bad = Image(height=3, width=4, encoding="16UC1", step=8, data=b"\0" * 20)
    with pytest.raises(ImageFormatError, match="has 20 bytes; expected step"):
        conv.image_to_array(bad)


def test_camera_info_round_trip():
    m = CameraModel(640, 480, np.array([[615.1, 0, 322.4], [0, 614.9, 238.7], [0, 0, 1]]),
                    D=[0.1, -0.2, 0.001, 0.002, 0.05], frame_id="camera_color_optical_frame")
    msg = _wire(conv.model_to_camera_info(m, stamp=5))
    assert msg.distortion_model == "plumb_bob" and len(msg.d) == 5
    assert np.allclose(np.reshape(msg.r, (3, 3)), np.eye(3))
    assert np.allclose(np.reshape(msg.p, (3, 4))[:, :3], m.K) and np.allclose(np.reshape(msg.p, (3, 4))[:, 3], 0)
    assert msg.header.frame_id == "camera_color_optical_frame" and msg.binning_x == 0 and msg.roi.width == 0
    back = conv.camera_info_to_model(msg)
    assert back == m
    rp = CameraModel(640, 480, m.K, D=[0.1, -0.2, 0.001, 0.002, 0.05, 0.3, 0.01, 0.002],
                     distortion_model="rational_polynomial")
    msg = _wire(conv.model_to_camera_info(rp, frame_id="f"))
    assert msg.distortion_model == "rational_polynomial" and len(msg.d) == 8
    assert conv.camera_info_to_model(msg) == rp.copy(frame_id="f")


def test_camera_info_binning_roi_and_uncalibrated():
    m = CameraModel(640, 480, np.array([[600.0, 0, 320.0], [0, 600.0, 240.0], [0, 0, 1]]))
    msg = conv.model_to_camera_info(m)
    msg.binning_x = msg.binning_y = 2
    b = conv.camera_info_to_model(msg)
    assert (b.width, b.height, b.fx, b.cx) == (320, 240, 300.0, 160.0)
    msg = conv.model_to_camera_info(m)
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = 100, 50, 200, 100
    r = conv.camera_info_to_model(msg)
    assert (r.width, r.height, r.cx, r.cy) == (200, 100, 220.0, 190.0)
    with pytest.raises(ValueError, match="uncalibrated"):
        conv.camera_info_to_model(CameraInfo(width=640, height=480))


def test_pointcloud2_round_trip_and_rviz_layout():
    rng = np.random.default_rng(1)
    n = 1000
    xyz = rng.normal(size=(n, 3)).astype(np.float32)
    rgb = np.zeros(n, np.float32)
    fields = {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], "rgb": rgb,
              "ring": rng.integers(0, 32, n).astype(np.uint16)}
    msg = _wire(conv.fields_to_pointcloud2(fields, frame_id="lidar_link", stamp=7))
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, n, 18, 18 * n)
    assert [(f.name, f.offset, f.datatype) for f in msg.fields][:4] == [
        ("x", 0, PointField.FLOAT32), ("y", 4, PointField.FLOAT32), ("z", 8, PointField.FLOAT32),
        ("rgb", 12, PointField.FLOAT32)]
    assert msg.is_dense and not msg.is_bigendian and msg.header.frame_id == "lidar_link"
    out = conv.pointcloud2_to_fields(msg)
    for k, v in fields.items():
        assert np.array_equal(out[k], v)
    only = conv.pointcloud2_to_fields(msg, names=["z", "ring"])
    assert list(only) == ["z", "ring"]
    with pytest.raises(PointCloudFormatError, match="no field 'intensity'"):
        conv.pointcloud2_to_fields(msg, names=["intensity"])


def test_organized_cloud_and_depth_cloud():
    m = CameraModel(64, 48, np.array([[40.0, 0, 31.5], [0, 40.0, 23.5], [0, 0, 1]]),
                    frame_id="camera_depth_optical_frame")
    depth = np.full((48, 64), 1500, np.uint16)
    depth[10, 10] = 0
    color = np.zeros((48, 64, 3), np.uint8)
    color[..., 2] = 255
    org = _wire(conv.depth_to_pointcloud2(depth, m, color=color, organized=True, stamp=1))
    assert (org.height, org.width) == (48, 64) and not org.is_dense
    f = conv.pointcloud2_to_fields(org)
    assert np.isnan(f["z"].reshape(48, 64)[10, 10]) and np.isclose(f["z"][0], 1.5)
    blue = unpack_rgb(f["rgb"])[2].reshape(48, 64)
    assert blue[10, 10] == 0 and (np.delete(blue.ravel(), 10 * 64 + 10) == 255).all()  # invalid: rgb 0
    flat = _wire(conv.depth_to_pointcloud2(depth, m, stride=2))
    assert flat.height == 1 and flat.width == 24 * 32 - 1 and flat.is_dense  # (10, 10) is on the stride grid: dropped
    assert flat.header.frame_id == "camera_depth_optical_frame"


def test_extrinsics_and_tf():
    T = RigidTransform.from_xyz_quat([0.0147, 0.0002, -0.0003], [0.001, -0.002, 0.003, 1.0])
    msg = _wire(conv.extrinsics_to_msg(T, "camera_depth_optical_frame", "camera_color_optical_frame", stamp=9))
    assert isinstance(msg, Extrinsics)
    assert msg.header.frame_id == "camera_depth_optical_frame" and msg.child_frame_id == "camera_color_optical_frame"
    assert np.allclose(np.reshape(msg.rotation, (3, 3)), T.R.T)  # column-major like librealsense
    assert conv.msg_to_transform(msg).almost_equal(T)
    tf = _wire(conv.transform_to_tf(T, "camera_link", "camera_depth_frame", stamp=Time(sec=3)))
    assert isinstance(tf, TransformStamped) and tf.header.stamp.sec == 3
    assert (tf.header.frame_id, tf.child_frame_id) == ("camera_link", "camera_depth_frame")
    assert conv.tf_to_transform(tf).almost_equal(T)


def test_rows_to_pointcloud2_fast_path():
    rows = np.arange(20, dtype=np.float32).reshape(5, 4)
    rows[2, 1] = np.nan
    msg = _wire(conv.rows_to_pointcloud2(rows, ["x", "y", "z", "intensity"], frame_id="lidar_link", stamp=3))
    assert (msg.width, msg.height, msg.point_step, msg.row_step) == (5, 1, 16, 80) and not msg.is_dense
    f = conv.pointcloud2_to_fields(msg)
    assert np.array_equal(f["intensity"], rows[:, 3]) and np.isnan(f["y"][2])
    org = conv.rows_to_pointcloud2(rows[:4], ["x", "y", "z", "t"], organized_shape=(2, 2))
    assert (org.height, org.width, org.row_step) == (2, 2, 32)
    with pytest.raises(ValueError, match=r"rows must be \(N, 3\)"):
        conv.rows_to_pointcloud2(rows, ["x", "y", "z"])


def test_cloud_rows_are_written_in_place_and_reused():
    """Rows written into cloud_rows' view are the message's data (no copy), and the next cloud
    reuses the buffer, shrunk or grown, unless a view of the old rows is still alive."""
    msg, rows = conv.cloud_rows(6, 5)
    rows[:] = np.arange(30, dtype=np.float32).reshape(6, 5)
    out = conv.rows_to_pointcloud2(rows, ["x", "y", "z", "intensity", "ir"], frame_id="f", is_dense=True, out=msg)
    assert out is msg and bytes(msg.data) == rows.tobytes() and msg.point_step == 20
    f = conv.pointcloud2_to_fields(_wire(msg))
    assert np.array_equal(f["ir"], rows[:, 4])
    data = msg.data
    del rows, f
    for n in (4, 9, 0, 3):
        again, rows = conv.cloud_rows(n, 5, reuse=msg)
        assert again is msg and again.data is data and len(data) == n * 20 and rows.shape == (n, 5)
        rows[:] = 1.5
        conv.rows_to_pointcloud2(rows, list("xyzab"), is_dense=True, out=again)
        assert msg.width == n and bytes(msg.data) == rows.tobytes()
        assert [f.name for f in msg.fields] == list("xyzab") and msg.point_step == 20  # the fields follow the names
        del rows
    _, alive = conv.cloud_rows(3, 5, reuse=msg)
    fresh, rows = conv.cloud_rows(8, 5, reuse=msg)  # `alive` still views the old buffer
    assert fresh is not msg and len(fresh.data) == 160 and alive.shape == (3, 5)
    # rows that are not the message's buffer are copied in, as without `out`
    other = np.full((2, 3), 2.0, np.float32)
    conv.rows_to_pointcloud2(other, ["x", "y", "z"], out=fresh)
    assert bytes(fresh.data) == other.tobytes() and fresh.is_dense


def test_image_to_rgb_array_orders_channels_as_rgb():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for enc, arr in (("rgb8", rgb), ("bgr8", rgb[:, :, ::-1]),
                     ("rgba8", np.dstack([rgb, np.full((2, 3), 255, np.uint8)])),
                     ("bgra8", np.dstack([rgb[:, :, ::-1], np.full((2, 3), 255, np.uint8)]))):
        out = conv.image_to_rgb_array(conv.array_to_image(np.ascontiguousarray(arr), enc))
        assert np.array_equal(out, rgb), enc
    mono = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert np.array_equal(conv.image_to_rgb_array(conv.array_to_image(mono, "mono8")), mono)
