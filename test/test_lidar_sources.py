"""LiDAR sources on real data: an Ouster capture through lidar_node over DDS (points and
NEAR_IR against what ouster-sdk itself reports), KITTI scans through the source."""
from __future__ import annotations

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2

from depth_ai_nodes.ros import conversions as conv
from harness import NodeProcess, collect

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
OUSTER = "OS-2-128-U1_v2.3.0_1024x10"


def _sdk_reference(pcap, meta):
    """What ouster-sdk reports for the capture's first scan, straight from the SDK."""
    sdk = pytest.importorskip("ouster.sdk", reason="ouster-sdk not installed")
    import ouster.sdk.core as core

    src = sdk.open_source(str(pcap), meta=[str(meta)])
    try:
        frames = next(iter(src))
        scan = frames if hasattr(frames, "timestamp") else frames[0]
        info = src.sensor_info[0]
        rng_mm = scan.field(core.ChanField.RANGE).astype(np.float64)
        xyz = core.XYZLut(info, use_extrinsics=False)(scan)
        nir = core.destagger(info, scan.field(core.ChanField.NEAR_IR))
        valid = rng_mm > 0
        return {"count": int(valid.sum()), "xyz": xyz[valid], "range_m": rng_mm[valid] / 1000.0,
                "near_ir": nir, "shape": rng_mm.shape}
    finally:
        src.close()


@pytest.mark.ros
@pytest.mark.data
def test_ouster_capture_through_lidar_node(shared_data, ros_node):
    pcap = shared_data / "ouster" / f"{OUSTER}.pcap"
    meta = shared_data / "ouster" / f"{OUSTER}.json"
    ref = _sdk_reference(pcap, meta)
    params = {"source": "ouster", "ouster_pcap": str(pcap), "ouster_metadata": str(meta), "qos": "reliable"}
    with NodeProcess.node("lidar_node", params) as lidar:
        got = collect(ros_node, {"/lidar/points": PointCloud2, "/lidar/near_ir/image": Image}, 1, 30.0, RELIABLE)
        assert got["/lidar/points"] and got["/lidar/near_ir/image"], lidar.output()
        assert lidar.stop() == 0
    msg = got["/lidar/points"][0][1]
    assert [f.name for f in msg.fields] == ["x", "y", "z", "intensity", "t", "ring"]
    assert msg.header.frame_id == "os_sensor"
    cols = conv.pointcloud2_to_fields(msg, ["x", "y", "z", "intensity", "ring", "t"])
    # point count and range statistics as ouster-sdk reports them
    assert cols["x"].size == ref["count"]
    xyz = np.stack([cols["x"], cols["y"], cols["z"]], axis=1)
    np.testing.assert_allclose(xyz, ref["xyz"], atol=1e-5)
    ours = np.linalg.norm(xyz, axis=1)
    # RANGE is measured from the beam origin, ~1-3 cm from the sensor origin the XYZ use
    for q in (5, 50, 95):
        assert abs(np.percentile(ours, q) - np.percentile(ref["range_m"], q)) < 0.05
    assert abs(ours.max() - ref["range_m"].max()) < 0.05
    assert cols["ring"].max() == ref["shape"][0] - 1
    assert 0.0 <= cols["t"].min() and cols["t"].max() < 0.11  # one revolution at 10 Hz
    img = got["/lidar/near_ir/image"][0][1]
    assert img.encoding == "mono16" and (img.height, img.width) == ref["near_ir"].shape
    nir = np.frombuffer(img.data, np.uint16).reshape(img.height, img.width)
    np.testing.assert_array_equal(nir, ref["near_ir"])


@pytest.mark.data
def test_ouster_32_beam_source(shared_data):
    from depth_ai_nodes.lidar.ouster import read_ouster

    name = "OS-1-32-G_v2.1.1_1024x10"
    ref = _sdk_reference(shared_data / "ouster" / f"{name}.pcap", shared_data / "ouster" / f"{name}.json")
    scans = read_ouster(shared_data / "ouster" / f"{name}.pcap", shared_data / "ouster" / f"{name}.json")
    pts = scans[0]["points"]
    assert pts["x"].size == ref["count"] and scans[0]["near_ir"].shape == (32, 1024)
    np.testing.assert_allclose(np.c_[pts["x"], pts["y"], pts["z"]], ref["xyz"], atol=1e-5)


@pytest.mark.data
def test_kitti_source(shared_data):
    from depth_ai_nodes.lidar import open_source

    src = open_source("kitti", path=str(shared_data / "kitti"), real_time=False, loop=False)
    assert src.calib is not None
    scans = [src.read(0.1), src.read(0.1)]
    assert src.read(0.01) is None  # two scans, no loop
    for scan, f in zip(scans, ["000000", "000001"]):
        raw = np.fromfile(shared_data / "kitti" / "velodyne" / f"{f}.bin", np.float32).reshape(-1, 4)
        assert len(scan) == raw.shape[0]
        np.testing.assert_array_equal(scan.points["x"], raw[:, 0])
        np.testing.assert_array_equal(scan.points["intensity"], raw[:, 3] * 255.0)
        assert scan.points["ring"].max() == 63  # HDL-64E: 64 rings recovered from the scan order
        assert 0.0 <= scan.points["t"].min() and scan.points["t"].max() < 0.1


def test_synthetic_source_publishes_calibration_and_scans():
    from depth_ai_nodes.lidar import open_source

    src = open_source("synthetic", beams=16, columns=256, real_time=False)
    scan = src.read(0.1)
    assert len(scan) > 1000 and scan.points["ring"].max() == 15
    m = src.camera_from_lidar
    np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-9)
    pose, v, w = src.odometry(scan.stamp_ns)
    assert pose.shape == (4, 4) and v.shape == (3,) and w.shape == (3,)


def test_bad_source_settings_are_config_errors():
    from depth_ai_nodes.lidar import SourceError, open_source

    with pytest.raises(SourceError, match="no .bin scans"):
        open_source("kitti", path="/nonexistent")
    with pytest.raises(SourceError, match="unknown LiDAR source"):
        open_source("velodyne_live")
    with NodeProcess.node("lidar_node", {"source": "kitti"}) as node:
        assert node.wait(30) == 2
        assert "configuration error" in node.output() and "kitti_path" in node.output()
    with NodeProcess.node("lidar_node", {"qos_depth": -1}) as node:
        assert node.wait(30) == 2
        assert "configuration error" in node.output() and "qos_depth -1: use 0" in node.output()


def _lzf_literals(raw: bytes) -> bytes:
    """The simplest valid LZF stream: literal runs of at most 32 bytes."""
    out = bytearray()
    for i in range(0, len(raw), 32):
        chunk = raw[i:i + 32]
        out += bytes([len(chunk) - 1]) + chunk
    return bytes(out)


def _write_pcd(path, cols: dict, kind: str) -> None:
    names = list(cols)
    n = len(cols["x"])
    head = (f"# .PCD v0.7\nVERSION 0.7\nFIELDS {' '.join(names)}\nSIZE {' '.join('4' for _ in names)}\n"
            f"TYPE {' '.join('U' if cols[k].dtype == np.uint32 else 'F' for k in names)}\n"
            f"COUNT {' '.join('1' for _ in names)}\nWIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\n"
            f"POINTS {n}\nDATA {kind}\n").encode()
    if kind == "ascii":
        body = "\n".join(" ".join(repr(float(cols[k][i])) if cols[k].dtype.kind == "f" else str(int(cols[k][i]))
                                  for k in names) for i in range(n)).encode() + b"\n"
    elif kind == "binary":
        rec = np.zeros(n, [(k, cols[k].dtype) for k in names])
        for k in names:
            rec[k] = cols[k]
        body = rec.tobytes()
    else:  # binary_compressed: field-major, LZF
        raw = b"".join(cols[k].astype(cols[k].dtype.newbyteorder("<")).tobytes() for k in names)
        comp = _lzf_literals(raw)
        body = np.array([len(comp), len(raw)], "<u4").tobytes() + comp
    path.write_bytes(head + body)


@pytest.mark.data
def test_point_files_bin_layouts_and_every_pcd_encoding(tmp_path, shared_data):
    """The files source reads KITTI .bin as written, a nuScenes-like 5-field .bin, and PCD
    in ascii, binary and binary_compressed (LZF) with the same numbers."""
    from depth_ai_nodes.lidar import open_source
    from depth_ai_nodes.lidar.base import SourceError
    from depth_ai_nodes.lidar.files import _lzf_decompress, read_pcd

    kitti_bin = shared_data / "kitti" / "velodyne" / "000000.bin"
    raw = np.fromfile(kitti_bin, np.float32).reshape(-1, 4)
    src = open_source("files", path=str(kitti_bin.parent), real_time=False, loop=False)
    scan = src.read(1.0)
    np.testing.assert_array_equal(scan.points["x"], raw[:, 0])
    np.testing.assert_array_equal(scan.points["intensity"], raw[:, 3])
    assert not scan.points["t"].any() and len(scan) == raw.shape[0]
    rng = np.random.default_rng(0)
    nus = np.c_[raw[:500], rng.integers(0, 32, 500)].astype(np.float32)  # x y z intensity ring
    (tmp_path / "nus").mkdir()
    nus.tofile(tmp_path / "nus" / "a.bin")
    scan = open_source("files", path=str(tmp_path / "nus" / "*.bin"), bin_fields="x,y,z,intensity,ring",
                       real_time=False).read(1.0)
    np.testing.assert_array_equal(scan.points["ring"], nus[:, 4].astype(np.uint16))
    cols = {"x": raw[:300, 0].copy(), "y": raw[:300, 1].copy(), "z": raw[:300, 2].copy(),
            "intensity": raw[:300, 3].copy(), "t": np.linspace(0, 0.1, 300).astype(np.float32)}
    for kind in ("ascii", "binary", "binary_compressed"):
        _write_pcd(tmp_path / f"{kind}.pcd", cols, kind)
        got = read_pcd(tmp_path / f"{kind}.pcd")
        for k in cols:
            np.testing.assert_allclose(got[k], cols[k], rtol=1e-6, err_msg=f"{kind} {k}")
    scan = open_source("files", path=str(tmp_path / "binary_compressed.pcd"), real_time=False).read(1.0)
    np.testing.assert_allclose(scan.points["t"], cols["t"])
    # LZF back references (PCL's real files use them): "abcabcabc" = literal "abc" + copy 6 from 3 back
    out = np.empty(9, np.uint8)
    stream = np.frombuffer(bytes([2]) + b"abc" + bytes([(4 << 5) | 0, 2]), np.uint8)
    assert _lzf_decompress(stream, out) == 9 and out.tobytes() == b"abcabcabc"
    with pytest.raises(SourceError, match="bin_fields"):
        open_source("files", path=str(kitti_bin.parent), bin_fields="x,y,z", real_time=False).read(1.0)


@pytest.mark.data
def test_lidar_node_plays_point_files(shared_data, ros_node):
    folder = shared_data / "kitti" / "velodyne"
    sizes = {np.fromfile(f, np.float32).size // 4 for f in folder.glob("*.bin")}
    with NodeProcess.node("lidar_node", {"source": "files", "points_path": str(folder), "qos": "reliable",
                                         "frame_id": "velodyne"}) as node:
        got = collect(ros_node, {"/lidar/points": PointCloud2}, 2, 30.0, qos=RELIABLE)
        assert got["/lidar/points"], node.output()
        msg = got["/lidar/points"][0][1]
        assert msg.width in sizes and msg.header.frame_id == "velodyne"
        assert node.stop() == 0
