"""image_transport's compressed and compressedDepth formats (core/compressed.py), byte for byte.

RVL is checked against a line-by-line transcription of the plugin's rvl_codec.cpp; the PNG
and JPEG payloads against OpenCV, which the plugins use (cv2.imencode / imdecode); the
ConfigHeader against its C layout. Corrupt input is rejected with a reason.
"""
from __future__ import annotations

import struct
import time

import numpy as np
import pytest

from depth_ai_nodes.core.compressed import (decode_compressed, decode_compressed_depth, encode_compressed,
                                            encode_compressed_depth, rvl_decode, rvl_encode)
from depth_ai_nodes.core.rejection import Reason, Rejected

cv2 = pytest.importorskip("cv2", reason="OpenCV (the eval extra) is the plugins' own codec library")


def reference_rvl(pixels: np.ndarray) -> bytes:
    """compressed_depth_image_transport's CompressRVL, transcribed: int32 words, nibbles MSB first."""
    words: list[int] = []
    state = {"word": 0, "n": 0}

    def encode_vle(value: int) -> None:
        while True:
            nibble = value & 0x7
            value >>= 3
            if value:
                nibble |= 0x8
            state["word"] = ((state["word"] << 4) | nibble) & 0xFFFFFFFF
            state["n"] += 1
            if state["n"] == 8:
                words.append(state["word"])
                state["word"], state["n"] = 0, 0
            if not value:
                break

    data = [int(v) for v in pixels.ravel()]
    i, previous = 0, 0
    while i < len(data):
        zeros = 0
        while i < len(data) and data[i] == 0:
            zeros, i = zeros + 1, i + 1
        encode_vle(zeros)
        nonzeros = 0
        while i + nonzeros < len(data) and data[i + nonzeros]:
            nonzeros += 1
        encode_vle(nonzeros)
        for _ in range(nonzeros):
            current = data[i]
            i += 1
            delta = current - previous
            encode_vle(((delta << 1) ^ (delta >> 31)) & 0xFFFFFFFF)
            previous = current
    if state["n"]:
        words.append((state["word"] << 4 * (8 - state["n"])) & 0xFFFFFFFF)
    h, w = pixels.shape
    return struct.pack("<II", w, h) + struct.pack(f"<{len(words)}I", *words)


def scene_depth() -> np.ndarray:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:120, 0:160]
    d = (1500 + 4 * xx + 2 * yy + rng.integers(-3, 4, xx.shape)).astype(np.uint16)
    d[30:60, 40:90] = 800
    d[rng.uniform(size=d.shape) < 0.08] = 0
    d[:, :5] = 0
    return d


def test_rvl_is_byte_identical_to_the_plugins_codec_and_lossless():
    for d in (scene_depth(), np.zeros((4, 7), np.uint16), np.full((3, 5), 65535, np.uint16),
              np.random.default_rng(1).integers(0, 65536, (31, 17)).astype(np.uint16)):
        blob = rvl_encode(d)
        assert blob == reference_rvl(d)
        np.testing.assert_array_equal(rvl_decode(blob), d)


def test_compressed_depth_png_and_rvl_are_exact_and_read_by_the_plugins_library():
    d = scene_depth()
    for fmt in ("png", "rvl"):
        form, data = encode_compressed_depth(d, "16UC1", fmt)
        assert form == f"16UC1; compressedDepth {fmt}"
        assert data[:12] == struct.pack("<iff", 0, 0.0, 0.0)  # ConfigHeader {INV_DEPTH, {0, 0}}
        enc, back = decode_compressed_depth(form, data)
        assert enc == "16UC1" and back.dtype == np.uint16
        np.testing.assert_array_equal(back, d)
    _, data = encode_compressed_depth(d, "16UC1", "png")
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(data[12:], np.uint8), cv2.IMREAD_UNCHANGED), d)
    # and what the plugin writes (header + cv2 PNG) we read exactly
    ok, png = cv2.imencode(".png", d, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    np.testing.assert_array_equal(decode_compressed_depth("16UC1; compressedDepth", struct.pack("<iff", 0, 0, 0)
                                                          + png.tobytes())[1], d)


def test_compressed_depth_32fc1_uses_the_plugins_inverse_depth_quantization():
    d = scene_depth().astype(np.float32) / 1000.0
    d[d == 0] = np.nan
    form, data = encode_compressed_depth(d, "32FC1", "png", depth_max=10.0, depth_quantization=100.0)
    qa, qb = struct.unpack_from("<ff", data, 4)
    assert qa == pytest.approx(100.0 * 101.0) and qb == pytest.approx(1.0 - qa / 10.0)
    q = cv2.imdecode(np.frombuffer(data[12:], np.uint8), cv2.IMREAD_UNCHANGED)
    plugin = np.where(q > 0, np.float32(qa) / (q.astype(np.float32) - np.float32(qb)), np.nan)  # its decoder
    _, ours = decode_compressed_depth(form, data)
    np.testing.assert_allclose(ours, plugin, rtol=1e-6, equal_nan=True)
    assert np.nanmax(np.abs(ours - d) / d) < 1e-3


def test_jpeg_and_png_compressed_images_interoperate_with_opencv():
    rng = np.random.default_rng(0)
    rgb = np.clip(np.dstack([np.mgrid[0:96, 0:128][1] * 2, np.mgrid[0:96, 0:128][0] * 2, np.full((96, 128), 90)])
                  + rng.integers(-4, 5, (96, 128, 3)), 0, 255).astype(np.uint8)
    form, data = encode_compressed(rgb, "rgb8", "jpeg", jpeg_quality=95)
    assert form == "rgb8; jpeg compressed bgr8"
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # the plugin's subscriber
    assert np.abs(bgr[..., ::-1].astype(int) - rgb).mean() < 3.0
    ok, theirs = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])  # the plugin's publisher
    enc, back = decode_compressed("rgb8; jpeg compressed bgr8", theirs.tobytes())
    assert enc == "rgb8" and np.abs(back.astype(int) - rgb).mean() < 3.0
    form, data = encode_compressed(rgb[..., 1].copy(), "mono8", "png")
    assert form == "mono8; png compressed "
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), rgb[..., 1])


@pytest.mark.parametrize("fmt,data,reason", [
    ("16UC1; compressedDepth png", b"\x00" * 8, Reason.MALFORMED),              # shorter than the header
    ("16UC1; compressedDepth png", struct.pack("<iff", 0, 0, 0) + b"notapng", Reason.MALFORMED),
    ("16UC1; compressedDepth zstd", struct.pack("<iff", 0, 0, 0) + b"x" * 20, Reason.UNSUPPORTED),
    ("rgb8; compressedDepth png", struct.pack("<iff", 0, 0, 0) + b"x" * 20, Reason.UNSUPPORTED),
    ("16UC1; compressedDepth rvl", struct.pack("<iff", 0, 0, 0) + struct.pack("<II", 4000, 4000) + b"\x01" * 8,
     Reason.MALFORMED),                                                          # claims 16 M pixels
    ("16UC1; compressedDepth rvl", struct.pack("<iff", 0, 0, 0) + struct.pack("<II", 0, 5) + b"\x01" * 8,
     Reason.EMPTY),
])
def test_corrupt_compressed_depth_is_rejected_with_a_reason(fmt, data, reason):
    with pytest.raises(Rejected) as err:
        decode_compressed_depth(fmt, data)
    assert err.value.reason is reason


def test_truncated_streams_and_bad_compressed_images_are_rejected():
    d = scene_depth()
    form, data = encode_compressed_depth(d, "16UC1", "rvl")
    with pytest.raises(Rejected, match="truncated or corrupt"):
        decode_compressed_depth(form, data[: len(data) // 2])
    form, data = encode_compressed_depth(d, "16UC1", "png")
    with pytest.raises(Rejected):
        decode_compressed_depth(form, data[: len(data) // 2])
    with pytest.raises(Rejected) as err:
        decode_compressed("rgb8; jpeg compressed bgr8", b"\xff\xd8\xff" + b"\x00" * 40)
    assert err.value.reason is Reason.MALFORMED
    with pytest.raises(Rejected) as err:
        decode_compressed("rgb8; webp compressed bgr8", b"RIFF" + b"\x00" * 40)
    assert err.value.reason is Reason.UNSUPPORTED


@pytest.mark.ros
def test_camera_node_publishes_compressed_streams_and_inference_subscribes_to_them(ros_node):
    """camera_node with compressed (JPEG) and compressedDepth (RVL) on; depth_inference_node
    takes colour and depth through those transports. The compressedDepth of a frameset decodes
    to exactly its raw depth; the JPEG is within tolerance of the raw colour; inference runs."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image

    from harness import NodeProcess, collect

    rel = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
    cam = {"source": "synthetic", "synthetic.prerender_frames": 5, "qos": "reliable", "compressed.enable": True,
           "compressed_depth.enable": True, "compressed_depth.format": "rvl",
           "rgb_camera.color_profile": "320,240,10", "depth_module.depth_profile": "320,240,10",
           "depth_module.infra_profile": "320,240,10"}
    inf = {"color_transport": "compressed", "depth_transport": "compressedDepth", "input_qos": "reliable",
           "qos": "reliable", "intra_op_threads": 1}
    topics = {"/camera/depth/image_rect_raw": Image, "/camera/depth/image_rect_raw/compressedDepth": CompressedImage,
              "/camera/color/image_raw": Image, "/camera/color/image_raw/compressed": CompressedImage,
              "/depth_inference/depth": Image}
    with NodeProcess.node("camera_node", cam) as camera, NodeProcess.node("depth_inference_node", inf) as infer:
        got = collect(ros_node, topics, 3, 60.0, qos=rel)
        assert all(got.values()), ({k: len(v) for k, v in got.items()}, camera.output()[-1500:], infer.output()[-1500:])
        assert camera.stop() == 0 and infer.stop() == 0
    raw = {conv_stamp(m): m for _, m in got["/camera/depth/image_rect_raw"]}
    checked = 0
    for _, c in got["/camera/depth/image_rect_raw/compressedDepth"]:
        r = raw.get(conv_stamp(c))
        if r is None:
            continue
        assert c.format == "16UC1; compressedDepth rvl"
        _, depth = decode_compressed_depth(c.format, bytes(c.data))
        np.testing.assert_array_equal(depth, np.frombuffer(r.data, np.uint16).reshape(r.height, r.width))
        assert len(c.data) < 0.6 * len(r.data)
        checked += 1
    assert checked >= 1
    colors = {conv_stamp(m): m for _, m in got["/camera/color/image_raw"]}
    c = next(m for _, m in got["/camera/color/image_raw/compressed"] if conv_stamp(m) in colors)
    assert c.format == "rgb8; jpeg compressed bgr8"
    r = colors[conv_stamp(c)]
    _, rgb = decode_compressed(c.format, bytes(c.data))
    assert np.abs(rgb.astype(int) - np.frombuffer(r.data, np.uint8).reshape(r.height, r.width, 3)).mean() < 6.0
    d = got["/depth_inference/depth"][0][1]
    assert (d.width, d.height) == (320, 240) and np.isfinite(np.frombuffer(d.data, np.float32)).mean() > 0.5


def conv_stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _inputs_count(diags: list, node: str, key: str) -> int | None:
    """`key` in the newest /diagnostics of `node`'s inputs (None: none seen yet; 0: not counted)."""
    for a in reversed(diags):
        for st in a.status:
            if st.name == f"{node}: inputs":
                return int({kv.key: kv.value for kv in st.values}.get(key, 0))
    return None


def _malformed_count(diags: list, node: str) -> int | None:
    return _inputs_count(diags, node, "rejected malformed")


def _fused_until(ros_node, fused: list, send, names: list[str], done) -> dict | None:
    """send(stamp_ns) a cloud and its camera input, again with a new stamp until the fused
    cloud of that stamp has `names` fields satisfying `done` (the first clouds may go out
    before the node has its camera_infos and extrinsics); the last fields, or None."""
    from depth_ai_nodes.ros import conversions as conv
    from harness import spin_until

    def fields(stamp_ns: int) -> dict | None:
        f = next((f for f in fused if conv.stamp_to_ns(f.header.stamp) == stamp_ns), None)
        return None if f is None else conv.pointcloud2_to_fields(f, names)

    got = None
    for _ in range(10):
        now = time.time_ns()
        send(now)
        if spin_until(ros_node, lambda: fields(now) is not None, 2.0):
            got = fields(now)
            if done(got):
                break
    return got


def _fusion_outputs(ros_node) -> tuple[list, list]:
    """(fused clouds, /diagnostics arrays) as they arrive, for the fusion node's tests."""
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import PointCloud2

    from fuzz_messages import RELIABLE

    fused: list[PointCloud2] = []
    diags: list[DiagnosticArray] = []
    ros_node.create_subscription(PointCloud2, "/fused/points", fused.append, RELIABLE)
    ros_node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 50)
    return fused, diags


def _corrupt(data: bytes) -> bytes:
    return data[:20] + bytes(len(data) - 20)   # a JPEG header, its body zeroed


@pytest.mark.ros
def test_inference_decodes_compressed_frames_only_when_it_takes_them_and_rejects_corrupt_ones(ros_node):
    """Compressed frames are stored undecoded and decoded when the worker takes one: a corrupt
    frame replaced by a newer one before the worker took it is never decoded (no rejection:
    decoding each in the callbacks cost the server a third of inference's rate); a corrupt
    frame the worker takes is rejected with its reason, the node stays alive, the next good
    one is used."""
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CompressedImage, Image

    from harness import NodeProcess, spin_until

    name = "depth_inference"
    inf = {"color_topic": "/cz/color", "depth_topic": "/cz/depth", "color_info_topic": "/cz/info",
           "color_transport": "compressed", "depth_transport": "compressedDepth", "input_qos": "reliable",
           "qos": "reliable", "intra_op_threads": 1, "depth_wait": 3.0}
    color_pub = ros_node.create_publisher(CompressedImage, "/cz/color/compressed", 10)
    depth_pub = ros_node.create_publisher(CompressedImage, "/cz/depth/compressedDepth", 10)
    outs: list[Image] = []
    diags: list[DiagnosticArray] = []
    ros_node.create_subscription(Image, "/depth_inference/depth", outs.append, 10)
    ros_node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 50)
    rgb = np.full((48, 64, 3), 90, np.uint8)
    depth = np.full((48, 64), 1500, np.uint16)
    depth[10:20, 10:30] = 0
    color_fmt, color_bytes = encode_compressed(rgb, "rgb8")
    depth_fmt, depth_bytes = encode_compressed_depth(depth, "16UC1", "rvl")

    def publish(pub, fmt: str, data: bytes, sec: int) -> None:
        m = CompressedImage(format=fmt, data=data)
        m.header.stamp.sec = sec
        m.header.frame_id = "cz_optical_frame"
        pub.publish(m)

    def output_for(sec: int) -> bool:
        return spin_until(ros_node, lambda: any(o.header.stamp.sec == sec for o in outs), 5.0)

    with NodeProcess.node("depth_inference_node", inf) as node:
        assert spin_until(ros_node, lambda: color_pub.get_subscription_count() > 0
                          and depth_pub.get_subscription_count() > 0, 30.0), node.output()[-2000:]
        # a corrupt frame without its depth waits (depth_wait) and is replaced by a good pair
        publish(color_pub, color_fmt, _corrupt(color_bytes), 999)
        publish(depth_pub, depth_fmt, depth_bytes, 1000)
        publish(color_pub, color_fmt, color_bytes, 1000)
        assert output_for(1000), node.output()[-2000:]
        assert spin_until(ros_node, lambda: _malformed_count(diags[-3:], name) is not None, 5.0)
        assert _malformed_count(diags, name) == 0, "a replaced frame was decoded"
        # a corrupt frame the worker takes: rejected and counted, then a good one is used
        publish(depth_pub, depth_fmt, depth_bytes, 1001)
        publish(color_pub, color_fmt, _corrupt(color_bytes), 1001)
        assert spin_until(ros_node, lambda: (_malformed_count(diags[-3:], name) or 0) > 0, 10.0), \
            node.output()[-2000:]
        assert node.alive() and not any(o.header.stamp.sec == 1001 for o in outs)
        publish(depth_pub, depth_fmt, depth_bytes, 1002)
        publish(color_pub, color_fmt, color_bytes, 1002)
        assert output_for(1002), node.output()[-2000:]
        out = np.frombuffer(outs[-1].data, np.float32).reshape(48, 64)
        assert np.nanmedian(out) == pytest.approx(1.5, rel=0.02)
        assert node.stop() == 0


@pytest.mark.ros
def test_fusion_decodes_a_compressed_ir_frame_only_when_a_cloud_is_fused_with_it(ros_node):
    """ir_transport compressed: frames are matched undecoded. A corrupt frame no cloud matches
    is never decoded (no rejection; decoding each in the callbacks delayed the frames behind it
    past sync_timeout on a full core); a cloud matched to a corrupt frame goes out without camera
    values and the frame is rejected with its reason; a good frame gives IR values."""
    from sensor_msgs.msg import CameraInfo, CompressedImage, PointCloud2

    from depth_ai_nodes.msg import Extrinsics
    from depth_ai_nodes.ros import conversions as conv
    from fuzz_messages import FUSION_PARAMS, H, LATCHED, RELIABLE, W, valid_cloud, valid_info
    from harness import NodeProcess, spin_until

    name = "lidar_fusion_node"
    pubs = {"ir": ros_node.create_publisher(CompressedImage, "/fz/ir/compressed", RELIABLE),
            "info": ros_node.create_publisher(CameraInfo, "/fz/ir_info", RELIABLE),
            "cloud": ros_node.create_publisher(PointCloud2, "/fz/points", RELIABLE),
            "extrinsics": ros_node.create_publisher(Extrinsics, "/fz/extrinsics", LATCHED)}
    fused, diags = _fusion_outputs(ros_node)
    ir_fmt, ir_bytes = encode_compressed((np.arange(W * H) % 251).astype(np.uint8).reshape(H, W), "mono8")

    def send_ir(data: bytes, stamp_ns: int) -> None:
        m = CompressedImage(format=ir_fmt, data=data)
        m.header.stamp = conv.ns_to_stamp(stamp_ns)
        m.header.frame_id = "fz_cam"
        pubs["info"].publish(valid_info(stamp_ns))
        pubs["ir"].publish(m)

    def fuse(ir_data: bytes, stray: bool, done) -> np.ndarray | None:
        """A cloud and its IR frame (and a corrupt frame 0.5 s earlier that no cloud matches,
        when `stray`), resent until the fused ir field satisfies `done`."""
        def send(now: int) -> None:
            if stray:
                send_ir(_corrupt(ir_bytes), now - 500_000_000)
            send_ir(ir_data, now)
            pubs["cloud"].publish(valid_cloud(now))
        got = _fused_until(ros_node, fused, send, ["ir"], done=lambda f: done(f["ir"]))
        return None if got is None else got["ir"]

    with NodeProcess.node(name, {**FUSION_PARAMS, "ir_transport": "compressed"}) as node:
        assert spin_until(ros_node, lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), 30.0), \
            node.output()[-2000:]
        pubs["extrinsics"].publish(conv.extrinsics_to_msg(np.eye(4), "fz_lidar", "fz_cam"))
        ir = fuse(ir_bytes, stray=True, done=lambda ir: np.isfinite(ir).mean() > 0.5)
        assert ir is not None and np.isfinite(ir).mean() > 0.5, node.output()[-2000:]
        assert spin_until(ros_node, lambda: _malformed_count(diags[-3:], name) is not None, 5.0)
        assert _malformed_count(diags, name) == 0, "an unmatched frame was decoded"
        ir = fuse(_corrupt(ir_bytes), stray=False, done=lambda ir: True)
        assert ir is not None and not np.isfinite(ir).any(), node.output()[-2000:]  # no camera values
        assert spin_until(ros_node, lambda: (_malformed_count(diags[-3:], name) or 0) > 0, 10.0), \
            node.output()[-2000:]  # the frame it was matched to: rejected with its reason
        assert node.alive() and node.stop() == 0


@pytest.mark.ros
def test_fusion_decodes_compressed_colour_and_depth_only_for_the_cloud_that_uses_them(ros_node):
    """color_transport compressed, depth_transport compressedDepth: colour and depth frames are
    held undecoded and decoded when a cloud is fused with them. Corrupt ones no cloud uses are
    never decoded (no rejection; at 30 fps two of three are never used); a cloud fused with
    corrupt ones goes out without rgb and depth_diff, and both are rejected with their reason;
    good ones give the colour and the depth difference."""
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

    from depth_ai_nodes.msg import Extrinsics
    from depth_ai_nodes.ros import conversions as conv
    from fuzz_messages import FUSION_PARAMS, H, LATCHED, RELIABLE, W, valid_cloud, valid_info
    from harness import NodeProcess, spin_until

    name = "lidar_fusion_node"
    params = {**FUSION_PARAMS, "color_topic": "/fz/color", "color_transport": "compressed",
              "color_info_topic": "/fz/color_info", "color_extrinsics_topic": "/fz/d2c",
              "depth_topic": "/fz/depth", "depth_transport": "compressedDepth"}
    pubs = {"ir": ros_node.create_publisher(Image, "/fz/ir", RELIABLE),
            "info": ros_node.create_publisher(CameraInfo, "/fz/ir_info", RELIABLE),
            "color": ros_node.create_publisher(CompressedImage, "/fz/color/compressed", RELIABLE),
            "color_info": ros_node.create_publisher(CameraInfo, "/fz/color_info", RELIABLE),
            "depth": ros_node.create_publisher(CompressedImage, "/fz/depth/compressedDepth", RELIABLE),
            "cloud": ros_node.create_publisher(PointCloud2, "/fz/points", RELIABLE),
            "extrinsics": ros_node.create_publisher(Extrinsics, "/fz/extrinsics", LATCHED),
            "d2c": ros_node.create_publisher(Extrinsics, "/fz/d2c", LATCHED)}
    fused, diags = _fusion_outputs(ros_node)
    ir = conv.array_to_image(np.full((H, W), 120, np.uint8), "mono8", frame_id="fz_cam")
    color_fmt, color_bytes = encode_compressed(np.full((H, W, 3), (200, 40, 40), np.uint8), "rgb8")
    depth_fmt, depth_bytes = encode_compressed_depth(np.full((H, W), 1000, np.uint16), "16UC1", "rvl")

    def send_camera(color: bytes, depth: bytes, stamp_ns: int, with_ir: bool = True) -> None:
        for pub, fmt, data in ((pubs["color"], color_fmt, color), (pubs["depth"], depth_fmt, depth)):
            m = CompressedImage(format=fmt, data=data)
            m.header.stamp = conv.ns_to_stamp(stamp_ns)
            m.header.frame_id = "fz_cam"
            pub.publish(m)
        pubs["info"].publish(valid_info(stamp_ns))
        pubs["color_info"].publish(valid_info(stamp_ns))
        if with_ir:
            ir.header.stamp = conv.ns_to_stamp(stamp_ns)
            pubs["ir"].publish(ir)

    def fuse(color: bytes, depth: bytes, stray: bool, done) -> dict | None:
        """A cloud with its camera frames (and corrupt colour and depth 0.8 s earlier, which no
        cloud uses, when `stray`), resent until the fused fields satisfy `done`."""
        def send(now: int) -> None:
            if stray:
                send_camera(_corrupt(color_bytes), _corrupt(depth_bytes), now - 800_000_000, with_ir=False)
            send_camera(color, depth, now)
            time.sleep(0.05)  # the frames before the cloud: they travel on other topics
            pubs["cloud"].publish(valid_cloud(now))
        return _fused_until(ros_node, fused, send, ["ir", "rgb", "depth_diff"], done)

    def has_colour(f: dict) -> bool:
        rgb = f["rgb"].view(np.uint32)
        return bool(np.isfinite(f["ir"]).mean() > 0.5 and (rgb == 0xC82828).mean() > 0.5)

    def rejected(stream: str) -> int:
        return _inputs_count(diags[-3:], name, f"rejected from {stream}") or 0

    with NodeProcess.node(name, params) as node:
        assert spin_until(ros_node, lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), 30.0), \
            node.output()[-2000:]
        pubs["extrinsics"].publish(conv.extrinsics_to_msg(np.eye(4), "fz_lidar", "fz_cam"))
        pubs["d2c"].publish(conv.extrinsics_to_msg(np.eye(4), "fz_cam", "fz_cam"))
        got = fuse(color_bytes, depth_bytes, stray=True,
                   done=lambda f: has_colour(f) and np.isfinite(f["depth_diff"]).mean() > 0.5)
        assert got is not None and has_colour(got), node.output()[-2000:]
        visible = np.isfinite(got["depth_diff"])
        assert visible.mean() > 0.5
        z = conv.pointcloud2_to_fields(fused[-1], ["z"])["z"]
        np.testing.assert_allclose(got["depth_diff"][visible], (1.0 - z)[visible], atol=0.02)  # camera - LiDAR
        assert spin_until(ros_node, lambda: _inputs_count(diags[-3:], name, "rejected from color") is not None, 5.0)
        assert rejected("color") == 0 and rejected("depth") == 0, "an unused frame was decoded"
        got = fuse(_corrupt(color_bytes), _corrupt(depth_bytes), stray=False, done=lambda f: True)
        assert got is not None and np.isfinite(got["ir"]).mean() > 0.5, node.output()[-2000:]
        assert not has_colour(got) and not np.isfinite(got["depth_diff"]).any()
        assert spin_until(ros_node, lambda: rejected("color") > 0 and rejected("depth") > 0, 10.0), \
            node.output()[-2000:]
        assert node.alive() and node.stop() == 0
