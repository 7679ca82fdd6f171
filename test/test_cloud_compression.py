"""point_cloud_transport's zstd and zlib formats (core/cloud_compression.py), byte for byte.

The plugins' layouts: zstd_point_cloud_transport writes one zstd frame that records its content
size (ZSTD_compressCCtx) and its subscriber refuses frames without one (ZSTD_getFrameContentSize);
zlib_point_cloud_transport deflates with window bits 15 + 16 (the gzip wrapper) and inflates with
15 + 32 (gzip or zlib header detected). Here the libraries those plugins call (libzstd through
`zstandard`, zlib) stand in for them. Corrupt, truncated and hostile input is rejected with a reason.
"""
from __future__ import annotations

import gzip
import time
import zlib

import numpy as np
import pytest
import zstandard

from depth_ai_nodes.core import cloud_compression as cc
from depth_ai_nodes.core import pointcloud
from depth_ai_nodes.core.rejection import Reason, Rejected

# point_cloud_interfaces/msg/CompressedPointCloud2 as upstream publishes it (docs.ros.org, Jazzy..
# Rolling): the type hash our vendored copy must share
UPSTREAM_DEFINITION = """std_msgs/Header header
uint32 height
uint32 width
sensor_msgs/PointField[] fields
bool is_bigendian
uint32 point_step
uint32 row_step
uint8[] compressed_data
bool is_dense
string format
"""


def scan_bytes() -> bytes:
    """A 16x512 scan of the built-in scene, packed as lidar_node packs it (24-byte points)."""
    from depth_ai_nodes.lidar.base import POINT_FIELDS
    from depth_ai_nodes.lidar.synthetic import SyntheticLidarSource

    scan = SyntheticLidarSource(beams=16, columns=512, rate_hz=10.0).read(1.0)
    return bytes(pointcloud.pack({n: scan.points[n].astype(t) for n, t in POINT_FIELDS}, point_step=24).data)


@pytest.mark.parametrize("fmt,level", [("zstd", 1), ("zstd", -3), ("zstd", 9), ("zlib", 1), ("zlib", 6)])
def test_round_trip_is_lossless_and_smaller(fmt, level):
    data = scan_bytes()
    packed = cc.encode(data, fmt, level)
    assert cc.decode(fmt, packed, len(data)) == data
    assert len(packed) < 0.6 * len(data)


def test_zstd_is_one_frame_with_its_size_as_the_plugin_writes_and_reads_it():
    data = scan_bytes()
    packed = cc.encode(data, "zstd", 3)
    assert zstandard.frame_content_size(packed) == len(data)   # what the subscriber checks first
    assert zstandard.get_frame_parameters(packed).content_size == len(data)
    assert zstandard.ZstdDecompressor().decompress(packed) == data   # ZSTD_decompressDCtx's one-shot
    # and a frame libzstd's compressor writes by default (the plugin's ZSTD_compressCCtx) reads here
    assert cc.decode("zstd", zstandard.ZstdCompressor(level=3).compress(data), len(data)) == data


def test_zlib_is_the_gzip_wrapper_as_the_plugin_writes_it_and_both_wrappers_read():
    data = scan_bytes()
    packed = cc.encode(data, "zlib", 6)
    assert packed[:3] == b"\x1f\x8b\x08"          # gzip magic + deflate (window bits 15 + 16)
    assert gzip.decompress(packed) == data
    plugin = zlib.compressobj(6, zlib.DEFLATED, 15 + 16)   # deflateInit2(..., 15 + 16, 8, default)
    assert cc.decode("zlib", plugin.compress(data) + plugin.flush(), len(data)) == data
    assert cc.decode("zlib", zlib.compress(data), len(data)) == data   # inflate detects zlib too


def _bomb(fmt: str) -> bytes:
    return cc.encode(bytes(50_000_000), fmt, 1)


@pytest.mark.parametrize("fmt,payload,size,reason,words", [
    ("zstd", lambda d: cc.encode(d, "zstd", 1)[:-40], None, Reason.MALFORMED, "truncated"),
    ("zstd", lambda d: b"\x00" * 64, None, Reason.MALFORMED, "not a zstd frame"),
    ("zstd", lambda d: zstandard.ZstdCompressor(write_content_size=False).compress(d), None,
     Reason.UNSUPPORTED, "does not record its size"),
    ("zstd", lambda d: cc.encode(d, "zstd", 1), 24, Reason.MALFORMED, "says"),
    ("zstd", lambda d: _bomb("zstd"), None, Reason.MALFORMED, "frame holds 50000000 bytes"),
    ("zlib", lambda d: cc.encode(d, "zlib", 1)[:-100], None, Reason.MALFORMED, "truncated"),
    ("zlib", lambda d: b"\x1f\x8b\x08" + b"\xff" * 60, None, Reason.MALFORMED, "corrupt"),
    ("zlib", lambda d: cc.encode(d, "zlib", 1), 24, Reason.MALFORMED, "says"),
    ("zlib", lambda d: _bomb("zlib"), None, Reason.MALFORMED, "says"),
    ("draco", lambda d: b"DRACO", None, Reason.UNSUPPORTED, "reads zstd and zlib"),
    ("zstd", lambda d: b"", None, Reason.EMPTY, "no compressed_data"),
    ("zstd", lambda d: cc.encode(d, "zstd", 1), 2**40, Reason.OUT_OF_RANGE, "limit"),
])
def test_corrupt_truncated_and_hostile_payloads_are_rejected_with_a_reason(fmt, payload, size, reason, words):
    data = scan_bytes()
    t0 = time.perf_counter()
    with pytest.raises(Rejected) as err:
        cc.decode(fmt, payload(data), len(data) if size is None else size)
    assert err.value.reason is reason and words in err.value.detail, err.value.detail
    # a payload claiming far more than its description is refused without inflating it all
    assert time.perf_counter() - t0 < 5.0


def test_levels_out_of_range_name_the_valid_range():
    with pytest.raises(ValueError, match=r"-1\.\.9"):
        cc.check_level("zlib", 12)
    with pytest.raises(ValueError, match="zstd or zlib"):
        cc.check_level("lz4", 1)


def test_expected_size_tolerates_row_step_zero_of_unorganized_clouds():
    assert cc.expected_size(height=1, width=100, point_step=16, row_step=0) == 1600
    assert cc.expected_size(height=4, width=100, point_step=16, row_step=1700) == 6800


def upstream_type_hash() -> str:
    from rosbags.typesys import Stores, get_typestore, get_types_from_msg

    store = get_typestore(Stores.ROS2_KILTED)
    name = "point_cloud_interfaces/msg/CompressedPointCloud2"
    store.register(get_types_from_msg(UPSTREAM_DEFINITION, name))
    return store.hash_rihs01(name)


@pytest.mark.ros
def test_fusion_node_reads_zstd_clouds_and_rejects_corrupt_ones_with_a_reason(ros_node):
    """lidar_fusion_node with cloud_transport zstd: a truncated frame and a message whose format
    names another plugin are rejected with their reasons; a good compressed cloud is fused. The
    message type is upstream's (same RIHS01 hash), so point_cloud_transport's plugins interoperate."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import PointCloud2

    from depth_ai_nodes.ros import conversions as conv
    from harness import NodeProcess, spin_until

    node = ros_node
    rel = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(conv.compressed_point_cloud2_type(), "/bad/points/zstd", rel)
    fused: list = []
    node.create_subscription(PointCloud2, "/fused/points", fused.append, rel)
    rng = np.random.default_rng(0)
    n = 500
    cols = {"x": rng.uniform(-1, 1, n).astype(np.float32), "y": rng.uniform(-1, 1, n).astype(np.float32),
            "z": rng.uniform(2, 5, n).astype(np.float32), "intensity": np.ones(n, np.float32)}
    good = conv.compress_pointcloud2(conv.fields_to_pointcloud2(cols, frame_id="lidar_link"), "zstd", 1)
    truncated = conv.compress_pointcloud2(conv.fields_to_pointcloud2(cols, frame_id="lidar_link"), "zstd", 1)
    truncated.compressed_data = bytes(good.compressed_data)[:-50]
    other = conv.compress_pointcloud2(conv.fields_to_pointcloud2(cols, frame_id="lidar_link"), "zlib", 1)
    params = {"cloud_topic": "/bad/points", "cloud_transport": "zstd", "extrinsics_source": "parameters",
              "qos": "reliable", "odom_topic": "''", "sync_timeout": 0.05}
    with NodeProcess.node("lidar_fusion_node", params) as fusion:
        assert spin_until(node, lambda: pub.get_subscription_count() > 0, 20.0), fusion.output()
        (info,) = node.get_publishers_info_by_topic("/bad/points/zstd")
        assert str(info.topic_type_hash) == upstream_type_hash()
        for msg, words in ((truncated, "(zstd) is truncated"), (other, "has format 'zlib'")):
            deadline = time.monotonic() + 15.0
            seen = False
            while not seen and time.monotonic() < deadline:
                pub.publish(msg)
                seen = spin_until(node, lambda w=words: w in fusion.output(), 1.0)
            assert seen, fusion.output()
        assert fused == []
        pub.publish(good)
        assert spin_until(node, lambda: len(fused) >= 1, 10.0), fusion.output()
        out = conv.pointcloud2_to_fields(fused[0], ["x", "y", "z"])
        for k in "xyz":   # lossless: the fused cloud holds the input's points as they were
            np.testing.assert_array_equal(out[k], cols[k])
        assert fusion.alive() and fusion.stop() == 0


def test_rounding_coordinates_bounds_the_error_keeps_other_fields_and_helps_compression():
    """compressed_points.resolution: x, y, z rounded to a power-of-two step <= the resolution
    (error within half of it, NaN kept); intensity, t and ring untouched byte for byte; a noisy
    real-like cloud then compresses clearly better."""
    rng = np.random.default_rng(1)
    n = 20_000
    cols = {"x": rng.uniform(-40, 40, n).astype(np.float32), "y": rng.uniform(-40, 40, n).astype(np.float32),
            "z": rng.normal(0, 2, n).astype(np.float32), "intensity": rng.integers(0, 3000, n).astype(np.float32),
            "t": np.linspace(0, 0.1, n, dtype=np.float32), "ring": (np.arange(n) % 128).astype(np.uint16)}
    cols["x"][::97] = np.nan
    data = bytes(pointcloud.pack(cols, point_step=24).data)
    rounded = cc.round_coordinates(data, 24, (0, 4, 8), 0.001)
    assert rounded.nbytes == len(data)
    before = np.frombuffer(data, np.uint8).reshape(n, 24)
    after = rounded.reshape(n, 24)
    np.testing.assert_array_equal(after[:, 12:], before[:, 12:])   # intensity, t, ring
    xyz0, xyz1 = before[:, :12].copy().view("<f4"), after[:, :12].copy().view("<f4")
    np.testing.assert_array_equal(np.isnan(xyz0), np.isnan(xyz1))
    err = np.abs(xyz1 - xyz0)[~np.isnan(xyz0)]
    assert err.max() <= 2.0 ** -11 + 1e-6 and err.max() > 1e-5   # step 2^-10 m: half of it at most
    lossless = len(cc.encode(data, "zstd", 1))
    lossy = len(cc.encode(rounded, "zstd", 1))
    assert lossy < 0.85 * lossless, (lossy, lossless)
    with pytest.raises(ValueError):
        cc.round_coordinates(data, 24, (0, 4, 8), 0.0)


def test_a_missing_zstd_library_is_named_with_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "zstandard", None)   # import zstandard -> ImportError
    with pytest.raises(ImportError, match="pip install zstandard"):
        cc.require("zstd")
    cc.require("zlib")   # in Python's standard library


@pytest.mark.ros
@pytest.mark.parametrize("params,reason", [
    ({"compressed_points.level": 99}, r"compressed_points: zstd level 99: use -7\.\.22"),
    ({"compressed_points.format": "zlib", "compressed_points.resolution": -0.5},
     r"compressed_points.resolution -0.5 m: use 0"),
])
def test_lidar_node_compression_settings_are_configuration_errors(params, reason):
    import re

    from harness import NodeProcess

    with NodeProcess.node("lidar_node", {"compressed_points.enable": True, **params}) as proc:
        code = proc.wait(timeout=60)
        out = proc.output()
    assert code == 2 and "configuration error" in out and re.search(reason, out), out[-2000:]
