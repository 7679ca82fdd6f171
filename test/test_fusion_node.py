"""lidar_fusion_node across processes on the built-in scene, over real DDS.

lidar_node (the scene's LiDAR, its calibration by topic, its odometry) and
lidar_fusion_node run as processes; this test process plays the IR camera: it renders
the SAME world with the scene's SyntheticCamera at each frame's stamp (scene time =
stamp, the convention lidar_node uses) and publishes infra1 image + camera_info, so it
knows exactly what the fusion node saw.
"""
from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from tf2_msgs.msg import TFMessage

from depth_ai_nodes.ros import conversions as conv
from harness import NodeProcess, collect, projected_pixels, spin_until

pytestmark = pytest.mark.ros

RELIABLE = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
TF_STATIC = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
SLOW = {"sync_timeout": 0.5}  # a loaded 2-core machine renders slowly; the rule is the same


class Camera:
    """The IR camera side, rendered in this process at scene time = stamp."""

    def __init__(self, node) -> None:
        from depth_ai_nodes.core.scene import CameraRig, SyntheticCamera, World

        self.cam = SyntheticCamera(World.default(seed=0), CameraRig(640, 480), seed=0)
        self.rig = self.cam.rig
        self.ir_pub = node.create_publisher(Image, "/camera/infra1/image_rect_raw", RELIABLE)
        self.info_pub = node.create_publisher(CameraInfo, "/camera/infra1/camera_info", RELIABLE)
        self.frames: dict[int, object] = {}
        self.k = 0

    def publish(self) -> None:
        stamp_ns = time.time_ns()
        frame = self.cam.render(stamp_ns * 1e-9, frame_index=self.k)
        self.k += 1
        self.frames[stamp_ns] = SimpleNamespace(ir=frame.ir, gt_depth_m=frame.gt_depth_m)  # what ir_at needs
        sec, nsec = divmod(stamp_ns, 1_000_000_000)
        m = self.rig.ir_model
        info = CameraInfo(width=m.width, height=m.height, distortion_model="plumb_bob",
                          d=[0.0] * 5, k=np.asarray(m.K, float).reshape(-1).tolist(),
                          r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                          p=np.c_[np.asarray(m.K, float), np.zeros(3)].reshape(-1).tolist())
        info.header.frame_id = "camera_infra1_optical_frame"
        info.header.stamp.sec, info.header.stamp.nanosec = sec, nsec
        img = Image(height=m.height, width=m.width, encoding="mono8", step=m.width)
        img.header = info.header
        img.data = np.ascontiguousarray(frame.ir).tobytes()
        self.info_pub.publish(info)
        self.ir_pub.publish(img)


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _diag_values(node, name_part: str, timeout: float = 4.0) -> dict[str, str]:
    got = collect(node, {"/diagnostics": DiagnosticArray}, 50, timeout,
                  stop_when=lambda g: any(name_part in s.name for _, a in g["/diagnostics"] for s in a.status))
    values: dict[str, str] = {}
    for _, arr in got["/diagnostics"]:
        for s in arr.status:
            if name_part in s.name:
                values = {kv.key: kv.value for kv in s.values}
                values["__message"] = s.message
    return values


@pytest.mark.parametrize("motion,transport", [("odom", "raw"), ("twist", "zstd")])
def test_fusion_on_the_scene_matches_rendered_ir_and_ground_truth_depth(ros_node, record_property, motion,
                                                                        transport):
    """De-skewed with lidar_node's odometry, or (twist) with the same motion as a
    geometry_msgs/TwistStamped stream this process relays from it. The twist case also takes
    the scans through point_cloud_transport's zstd form (/lidar/points/zstd), which must
    change nothing."""
    from geometry_msgs.msg import TwistStamped
    from nav_msgs.msg import Odometry

    from depth_ai_nodes.core.scene import SyntheticLidar, World

    node = ros_node
    motion_params: dict = {}
    if motion == "twist":
        twist_pub = node.create_publisher(TwistStamped, "/test/lidar_twist", RELIABLE)

        def relay(odom: Odometry) -> None:
            msg = TwistStamped()
            msg.header.stamp, msg.header.frame_id = odom.header.stamp, odom.child_frame_id
            msg.twist = odom.twist.twist
            twist_pub.publish(msg)

        node.create_subscription(Odometry, "/lidar/odom", relay, RELIABLE)
        motion_params = {"odom_topic": "''", "twist_topic": "/test/lidar_twist"}
    fused: list = []
    depths: list = []
    node.create_subscription(PointCloud2, "/fused/points", fused.append, RELIABLE)
    node.create_subscription(Image, "/lidar_depth", depths.append, RELIABLE)
    raw: dict[int, PointCloud2] = {}  # the input clouds by stamp: per-point times
    node.create_subscription(PointCloud2, "/lidar/points", lambda m: raw.__setitem__(_stamp_ns(m), m), RELIABLE)
    tf_static: list = []
    node.create_subscription(TFMessage, "/tf_static", tf_static.append, TF_STATIC)
    lidar_params: dict = {"qos": "reliable"}
    if transport != "raw":
        lidar_params.update({"compressed_points.enable": True, "compressed_points.format": transport})
        motion_params["cloud_transport"] = transport
    with NodeProcess.node("lidar_node", lidar_params) as lidar, \
            NodeProcess.node("lidar_fusion_node", {"qos": "reliable", **SLOW, **motion_params}) as fusion:
        # 1. a silent camera: clouds still go out, camera fields NaN. Also wait for this process's
        # own /lidar/points subscription to match (seen taking > 2 s under load): the checks below
        # need each fused cloud's input cloud for its per-point times
        assert spin_until(node, lambda: len(fused) >= 3 and len(raw) >= 1, 40.0), \
            lidar.output() + fusion.output()
        for msg in fused:
            cols = conv.pointcloud2_to_fields(msg, ["x", "y", "z", "intensity", "ir"])
            assert cols["x"].size > 10_000 and np.isnan(cols["ir"]).all()
        silent = len(fused)
        # no colour camera configured: nothing advertises a colour depth that never comes
        assert node.get_publishers_info_by_topic("/fused/points")
        assert not node.get_publishers_info_by_topic("/lidar_depth_color")

        # 2. the camera talks: fused IR = the rendered IR at each point's true pixel
        camera = Camera(node)
        fused.clear()
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline and (len(depths) < 3 or len(fused) < 6):
            camera.publish()
            spin_until(node, lambda: False, 0.02)
        assert len(depths) >= 3, fusion.output()

        # 3. the camera stops again: the clouds keep coming
        n = len(fused)
        assert spin_until(node, lambda: len(fused) >= n + 3, 10.0)
        # the input clouds (for their per-point times) may trail the fused ones on a busy machine
        spin_until(node, lambda: all(_stamp_ns(m) in raw for m in fused), 10.0)
        diag = _diag_values(node, "lidar_fusion_node: fusion")
        assert lidar.stop() == 0 and fusion.stop() == 0

    assert int(diag["without camera"]) >= silent and int(diag["fused with camera"]) >= 3
    assert int(diag["motion compensated"]) >= 3, diag  # the odometry / twist was used
    assert "points in view" in diag and "occluded" in diag and "match rate" in diag

    world = World.default(seed=0)
    lidar_model = SyntheticLidar(world, beams=32, columns=1024, rate_hz=10.0)
    from depth_ai_nodes.core.calibration import as_matrix
    from depth_ai_nodes.core.scene import lidar_to_camera

    cam_from_lidar = as_matrix(lidar_to_camera(camera.rig, lidar_model))
    # lidar_node's /tf_static mounts the LiDAR in the camera tree with the same calibration
    (mount,) = [t for m in tf_static for t in m.transforms if t.child_frame_id == "lidar_link"][-1:]
    assert mount.header.frame_id == "camera_infra1_optical_frame"
    np.testing.assert_allclose(conv.tf_to_transform(mount).matrix(), cam_from_lidar, atol=1e-6)
    # the k-th cloud fused with a camera frame and the k-th lidar_depth come from the same
    # match, and lidar_depth carries the stamp of the camera frame the node used
    with_camera = [m for m in fused if np.isfinite(conv.pointcloud2_to_fields(m, ["ir"])["ir"]).any()]
    checked = equal = 0
    d_checked = d_close = d_lidar_farther = 0
    d_errors: list = []
    skipped: list = []
    for msg, dmsg in zip(with_camera, depths):
        cols = conv.pointcloud2_to_fields(msg, ["x", "y", "z", "ir"])
        seen = np.isfinite(cols["ir"])
        t0 = _stamp_ns(msg)
        st = _stamp_ns(dmsg)
        if seen.sum() < 500 or t0 not in raw or st not in camera.frames:
            skipped.append((int(seen.sum()), t0 in raw, st in camera.frames))
            continue
        cols["t"] = conv.pointcloud2_to_fields(raw[t0], ["t"])["t"]  # the fused cloud keeps the input's order
        frame = camera.frames[st]
        T = st * 1e-9
        # truth: each point's world position at its firing time, seen by the camera at T
        idx = np.nonzero(seen)[0]
        p = np.stack([cols["x"][idx], cols["y"][idx], cols["z"][idx], np.ones(idx.size)], axis=1)
        ti = t0 * 1e-9 + cols["t"][idx].astype(np.float64)
        world_pts = np.stack([lidar_model.pose_matrix(a) @ b for a, b in zip(ti, p)])
        cam_from_world = cam_from_lidar @ np.linalg.inv(lidar_model.pose_matrix(T))
        in_cam = (world_pts @ cam_from_world.T)[:, :3]
        truth_ir, uv = camera.cam.ir_at(frame, in_cam)
        # points whose true position is within 0.3 px of a pixel centre: a sub-pixel residual
        # (de-skewing with the odometry's twist, float32) cannot flip them to a neighbour
        clear = np.all(np.abs(uv - np.round(uv)) < 0.3, axis=1) & np.isfinite(truth_ir)
        checked += int(clear.sum())
        equal += int((truth_ir[clear] == cols["ir"][idx][clear]).sum())
        img = np.frombuffer(dmsg.data, np.float32).reshape(dmsg.height, dmsg.width)
        gt = camera.frames[st].gt_depth_m
        ok = np.isfinite(img) & np.isfinite(gt)
        d_checked += int(ok.sum())
        close = np.abs(img[ok] - gt[ok]) < 0.02 * gt[ok] + 0.01
        d_close += int(close.sum())
        d_lidar_farther += int((img[ok][~close] > gt[ok][~close]).sum())
        d_errors.append(np.abs(img[ok] - gt[ok]))
    figures = {"ir_points_checked": checked, "ir_equal_fraction": equal / max(checked, 1),
               "depth_pixels_checked": d_checked, "depth_close_fraction": d_close / max(d_checked, 1),
               "depth_median_abs_err_m": float(np.median(np.concatenate(d_errors))) if d_errors else None,
               "depth_far_fraction_of_misses": d_lidar_farther / max(d_checked - d_close, 1),
               "depth_nearer_fraction": (d_checked - d_close - d_lidar_farther) / max(d_checked, 1)}
    record_property("fusion_scene", figures)
    print("fusion on the scene:", figures)
    assert checked > 1000 and d_checked > 1000, (len(with_camera), len(depths), skipped)
    # moving objects (a sliding sphere, a turning crate, a moving box) are not de-skewed:
    # their few points may see a neighbouring pixel
    assert figures["ir_equal_fraction"] > 0.95
    # lidar_depth is what the LiDAR measured. Where the camera sees a surface the LiDAR never
    # hit (it sits 0.5 m lower and looks under the table; the dark box returns too weakly to
    # the LiDAR), a LiDAR point behind that surface cannot be known to be hidden: 5-21 % of
    # the pixels here, depending on where the robot is during the test (20.5 % seen once in CI).
    # Those misses must be of that kind (LiDAR farther than the camera's surface), never the
    # errors of a wrong calibration or projection, which put LiDAR depth in front of the
    # surface as often as behind it: nearer misses are 0.2-1.0 % of the pixels (moving objects,
    # grazing floor).
    assert figures["depth_close_fraction"] > 0.7
    assert figures["depth_nearer_fraction"] < 0.03
    assert figures["depth_median_abs_err_m"] < 0.01


def _cloud(n: int = 100) -> PointCloud2:
    rng = np.random.default_rng(0)
    cols = {"x": rng.uniform(-1, 1, n).astype(np.float32), "y": rng.uniform(-1, 1, n).astype(np.float32),
            "z": rng.uniform(2, 5, n).astype(np.float32), "intensity": np.ones(n, np.float32)}
    return conv.fields_to_pointcloud2(cols, frame_id="lidar_link")


def test_malformed_clouds_are_rejected_with_a_reason_and_the_node_keeps_running(ros_node):
    node = ros_node
    pub = node.create_publisher(PointCloud2, "/bad/points", RELIABLE)
    fused: list = []
    node.create_subscription(PointCloud2, "/fused/points", fused.append, RELIABLE)
    short = _cloud()
    short.data = bytes(short.data)[:-7]
    step = _cloud()
    step.point_step = 6
    step.row_step = 6 * step.width
    missing = _cloud()
    missing.fields = [f for f in missing.fields if f.name != "z"]
    nan = _cloud()
    arr = np.frombuffer(bytes(nan.data), np.float32).copy()
    arr[:] = np.nan
    nan.data = arr.tobytes()
    odd = _cloud()  # valid but unusual: float64 xyz after a padding byte, point_step 40
    n = odd.width
    buf = np.zeros((n, 40), np.uint8)
    xyz = np.stack([np.linspace(-1, 1, n), np.zeros(n), np.full(n, 3.0)], 1)
    buf[:, 8:32] = xyz.view(np.uint8).reshape(n, 24)
    odd.fields = [PointField(name=c, offset=8 + 8 * i, datatype=PointField.FLOAT64, count=1)
                  for i, c in enumerate("xyz")]
    odd.point_step, odd.row_step, odd.data = 40, 40 * n, buf.tobytes()
    expected = {"bytes; 100 points of 16 bytes need": short, "does not fit in point_step 6": step,
                "missing field(s) z": missing, "NaN/inf": nan}
    params = {"cloud_topic": "/bad/points", "extrinsics_source": "parameters", "qos": "reliable",
              "odom_topic": "''", "sync_timeout": 0.05}
    with NodeProcess.node("lidar_fusion_node", params) as fusion:
        assert spin_until(node, lambda: pub.get_subscription_count() > 0, 20.0), fusion.output()
        seen: dict[str, bool] = {}
        for reason, msg in expected.items():
            deadline = time.monotonic() + 15.0
            seen[reason] = False
            while not seen[reason] and time.monotonic() < deadline:  # best effort: resend
                pub.publish(msg)
                seen[reason] = spin_until(node, lambda r=reason: r in fusion.output(), 1.0)
        assert all(seen.values()), f"{seen}\n{fusion.output()}"
        diag = collect(node, {"/diagnostics": DiagnosticArray}, 50, 4.0, stop_when=lambda g: any(
            s.name.endswith(": inputs") and "rejected" in s.message for _, a in g["/diagnostics"] for s in a.status))
        reasons = [s.message for _, a in diag["/diagnostics"] for s in a.status if s.name.endswith(": inputs")]
        assert reasons and "rejected" in reasons[-1]
        assert fused == []
        pub.publish(odd)  # and a good cloud of an odd layout still goes through
        assert spin_until(node, lambda: len(fused) >= 1, 10.0), fusion.output()
        out = conv.pointcloud2_to_fields(fused[0], ["x", "y", "z", "ir"])
        np.testing.assert_allclose(out["x"], xyz[:, 0].astype(np.float32))
        assert np.isnan(out["ir"]).all()  # no camera
        assert fusion.alive()
        assert fusion.stop() == 0


def test_a_cloud_waiting_for_its_camera_frame_goes_out_after_sync_timeout_with_nothing_else_arriving(ros_node):
    """The camera is alive but its newest frame is older than the cloud: the cloud waits for a
    nearer frame at most sync_timeout, then goes out without camera values, although no further
    frame or cloud arrives to trigger a decision (the node's poll timer runs only while a cloud
    waits; one never re-armed would hold this cloud for ever)."""
    from fuzz_messages import FUSION_PARAMS, H, LATCHED, W, valid_cloud, valid_info

    from depth_ai_nodes.msg import Extrinsics

    node = ros_node
    pubs = {"ir": node.create_publisher(Image, "/fz/ir", RELIABLE),
            "info": node.create_publisher(CameraInfo, "/fz/ir_info", RELIABLE),
            "cloud": node.create_publisher(PointCloud2, "/fz/points", RELIABLE),
            "extrinsics": node.create_publisher(Extrinsics, "/fz/extrinsics", LATCHED)}
    fused: list = []
    node.create_subscription(PointCloud2, "/fused/points", fused.append, RELIABLE)
    ir = conv.array_to_image(np.full((H, W), 80, np.uint8), "mono8", frame_id="fz_cam")
    params = {**FUSION_PARAMS, "sync_timeout": 0.3, "camera_silent_after": 5.0}
    with NodeProcess.node("lidar_fusion_node", params) as fusion:
        assert spin_until(node, lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), 30.0), \
            fusion.output()
        pubs["extrinsics"].publish(conv.extrinsics_to_msg(np.eye(4), "fz_lidar", "fz_cam"))

        def send(frame_ns: int, cloud_ns: int) -> float:
            """A camera frame (and its info), then a cloud once the node has taken them; the
            seconds from sending the cloud to its fused cloud arriving (inf: none in 3 s)."""
            pubs["info"].publish(valid_info(frame_ns))
            ir.header.stamp = conv.ns_to_stamp(frame_ns)
            pubs["ir"].publish(ir)
            spin_until(node, lambda: False, 0.3)
            sent = time.monotonic()
            pubs["cloud"].publish(valid_cloud(cloud_ns))
            if spin_until(node, lambda: any(_stamp_ns(f) == cloud_ns for f in fused), 3.0):
                return time.monotonic() - sent
            return float("inf")

        def ir_of(stamp_ns: int) -> np.ndarray:
            return conv.pointcloud2_to_fields(next(f for f in fused if _stamp_ns(f) == stamp_ns), ["ir"])["ir"]

        for _ in range(10):  # until a cloud is fused with its frame: the node has its camera_info
            now = time.time_ns()
            if send(now, now) < float("inf") and np.isfinite(ir_of(now)).any():
                break
        assert np.isfinite(ir_of(now)).any(), fusion.output()
        now = time.time_ns()
        waited = send(now - 1_000_000_000, now)  # its newest frame 1 s older than the cloud
        assert waited < float("inf"), f"the cloud never went out\n{fusion.output()}"
        assert np.isnan(ir_of(now)).all()  # no frame within slop
        assert waited >= 0.25, f"went out after {waited:.2f} s: did not wait for a nearer frame"
        assert fusion.alive() and fusion.stop() == 0


def test_defaults_just_work_with_camera_node_and_colour(ros_node):
    """camera_node (scene) + lidar_node + lidar_fusion_node, defaults plus colour and the aligned
    depth on: fused clouds carry IR, rgb and depth_diff (camera depth - LiDAR depth, in the
    colour camera: near 0 on the scene), and a lidar_depth in both cameras."""
    node = ros_node
    topics = {"/fused/points": PointCloud2, "/lidar_depth": Image, "/lidar_depth_color": Image,
              "/lidar_overlay": Image}
    with NodeProcess.node("camera_node", {"source": "synthetic"}) as camera, \
            NodeProcess.node("lidar_node") as lidar, \
            NodeProcess.node("lidar_fusion_node", {"color_topic": "/camera/color/image_raw",
                                                   "depth_topic": "/camera/aligned_depth_to_color/image_raw",
                                                   "depth_camera": "color", "publish_overlay": True,
                                                   **SLOW}) as fusion:
        got = collect(node, topics, 3, 60.0, QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT),
                      stop_when=lambda g: len(g["/lidar_depth_color"]) >= 2 and g["/lidar_overlay"] and any(
                          np.isfinite(conv.pointcloud2_to_fields(m, ["rgb"])["rgb"]).any()
                          for _, m in g["/fused/points"]))
        outputs = camera.output() + lidar.output() + fusion.output()
        fusion_diag = {} if got["/lidar_depth_color"] else \
            {part: _diag_values(node, f"lidar_fusion_node: {part}") for part in ("fusion", "inputs")}
        assert camera.stop() == 0 and lidar.stop() == 0 and fusion.stop() == 0
    # on a failure: what did arrive, and what the fusion node says it did (matched? fused?)
    assert got["/lidar_depth_color"], ({t: len(v) for t, v in got.items()}, fusion_diag, outputs)
    fused = [conv.pointcloud2_to_fields(m, ["x", "ir", "rgb", "depth_diff"]) for _, m in got["/fused/points"]]
    best = max(fused, key=lambda c: np.isfinite(c["ir"]).sum())
    assert np.isfinite(best["ir"]).sum() > 1000 and np.isfinite(best["rgb"]).sum() > 1000
    diff = best["depth_diff"][np.isfinite(best["depth_diff"])]
    assert diff.size > 200 and abs(float(np.median(diff))) < 0.25, (diff.size, np.median(diff) if diff.size else None)
    d = got["/lidar_depth_color"][-1][1]
    assert d.encoding == "32FC1" and d.header.frame_id == "camera_color_optical_frame"
    assert got["/lidar_overlay"] and got["/lidar_overlay"][-1][1].encoding == "rgb8"


@pytest.mark.data
@pytest.mark.parametrize("extrinsics_source", ["file", "topic", "projection"])
def test_kitti_scans_fused_with_their_image_via_calibration_file(ros_node, shared_data, extrinsics_source):
    """Real data end to end: lidar_node (KITTI scans) + lidar_fusion_node with the KITTI
    calib.txt as calibration_file; this process publishes frame 000000's image (grey, as the
    'IR' image) with K = P2[:, :3]. Fused values = the image at P2 @ R0_rect @ Tr @ X."""
    from PIL import Image as PILImage

    from depth_ai_nodes.core.calibration import parse_kitti_calib

    kitti = shared_data / "kitti"
    grey = np.asarray(PILImage.open(kitti / "image_2" / "000000.png").convert("L"))
    calib = parse_kitti_calib(kitti / "calib" / "000000.txt")
    h, w = grey.shape
    node = ros_node
    img_pub = node.create_publisher(Image, "/camera/infra1/image_rect_raw", RELIABLE)
    info_pub = node.create_publisher(CameraInfo, "/camera/infra1/camera_info", RELIABLE)
    fused: list = []
    node.create_subscription(PointCloud2, "/fused/points", fused.append, RELIABLE)
    n0 = np.fromfile(kitti / "velodyne" / "000000.bin", np.float32).size // 4
    # file: the fusion node reads calib.txt; topic (the default): lidar_node publishes what it
    # read from the KITTI folder's calib.txt, so the defaults just work
    # projection: extrinsics_matrix = P2 @ R0_rect @ Tr (lidar2img), and NO camera_info: the node
    # decomposes it into K [R | t] and needs nothing else
    params = {"extrinsics_source": "file", "calibration_file": str(kitti / "calib" / "000000.txt")} \
        if extrinsics_source == "file" else {}
    if extrinsics_source == "projection":
        params = {"extrinsics_source": "parameters",
                  "extrinsics_matrix": "[" + ",".join(repr(float(v)) for v in calib.projection(2).ravel()) + "]"}
    params.update({"odom_topic": "none", "qos": "reliable", **SLOW})
    with NodeProcess.node("lidar_node", {"source": "kitti", "kitti_path": str(kitti), "qos": "reliable"}) as lidar, \
            NodeProcess.node("lidar_fusion_node", params) as fusion:
        deadline = time.monotonic() + 40.0
        while time.monotonic() < deadline and not any(
                m.width == n0 and np.isfinite(conv.pointcloud2_to_fields(m, ["ir"])["ir"]).any() for m in fused):
            info = CameraInfo(width=w, height=h, distortion_model="plumb_bob", d=[0.0] * 5,
                              k=calib.P[2][:, :3].reshape(-1).tolist())
            info.header.frame_id = "kitti_camera_2"
            info.header.stamp = conv.ns_to_stamp(time.time_ns())
            img = conv.array_to_image(grey, "mono8", header=info.header)
            if extrinsics_source != "projection":
                info_pub.publish(info)
            img_pub.publish(img)
            spin_until(node, lambda: False, 0.03)
        outputs = lidar.output() + fusion.output()
        assert lidar.stop() == 0 and fusion.stop() == 0
    msg = next((m for m in fused if m.width == n0
                and np.isfinite(conv.pointcloud2_to_fields(m, ["ir"])["ir"]).any()), None)
    assert msg is not None, outputs
    seen, values, iv, iu = projected_pixels(msg, "ir", calib.projection(2))
    assert 15_000 < seen < 21_000  # ~20k in the image, minus the occluded
    np.testing.assert_array_equal(values, grey[iv, iu].astype(np.float32))


def test_extrinsics_from_tf_static_chained_through_the_robot_tree(ros_node):
    """extrinsics_source tf with no tf2_ros: this process publishes a robot's /tf_static
    (base_link -> camera_link -> camera_infra1_optical_frame, base_link -> lidar_link), the
    IR image and a cloud in lidar_link; the fused IR of every point is the image at the
    pixel the chained transform puts it on."""
    from depth_ai_nodes.core.transforms import RigidTransform
    from depth_ai_nodes.ros.tf import StaticBroadcaster
    from depth_ai_nodes.sources.frames import OPTICAL_IN_LINK

    node = ros_node
    w, h, f = 320, 240, 300.0
    base_cam = RigidTransform.from_xyz_quat([0.30, 0.05, 0.40], [0.0, 0.087, 0.0, 0.996])  # pitched 10 deg
    cam_opt = RigidTransform.from_matrix(OPTICAL_IN_LINK)
    base_lidar = RigidTransform.from_xyz_quat([0.10, -0.02, 0.60], [0.0, 0.0, 0.259, 0.966])  # yawed 30 deg
    opt_lidar = (base_cam @ cam_opt).inverse() @ base_lidar
    # points on a plane 3 m in front of the camera, each on a pixel centre
    uu, vv = np.meshgrid(np.arange(20, w - 20, 7), np.arange(20, h - 20, 5))
    z = np.full(uu.size, 3.0)
    p_opt = np.stack([(uu.ravel() - (w - 1) / 2) / f * z, (vv.ravel() - (h - 1) / 2) / f * z, z], 1)
    p_lidar = opt_lidar.inverse().apply(p_opt).astype(np.float32)
    image = ((np.arange(w)[None, :] * 7 + np.arange(h)[:, None] * 3) % 251).astype(np.uint8)

    tf_static = StaticBroadcaster(node, TFMessage)
    tf_static.sendTransform([conv.transform_to_tf(base_cam, "base_link", "camera_link"),
                             conv.transform_to_tf(cam_opt, "camera_link", "camera_infra1_optical_frame")])
    tf_static.sendTransform(conv.transform_to_tf(base_lidar, "base_link", "lidar_link"))
    img_pub = node.create_publisher(Image, "/camera/infra1/image_rect_raw", RELIABLE)
    info_pub = node.create_publisher(CameraInfo, "/camera/infra1/camera_info", RELIABLE)
    cloud_pub = node.create_publisher(PointCloud2, "/lidar/points", RELIABLE)
    fused: list = []
    node.create_subscription(PointCloud2, "/fused/points", fused.append, RELIABLE)
    params = {"extrinsics_source": "tf", "odom_topic": "''", "qos": "reliable", **SLOW}
    with NodeProcess.node("lidar_fusion_node", params) as fusion:
        assert spin_until(node, lambda: cloud_pub.get_subscription_count() > 0, 20.0), fusion.output()
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and not any(
                np.isfinite(conv.pointcloud2_to_fields(m, ["ir"])["ir"]).all() for m in fused):
            stamp = conv.ns_to_stamp(time.time_ns())
            info = CameraInfo(width=w, height=h, distortion_model="plumb_bob", d=[0.0] * 5,
                              k=[f, 0, (w - 1) / 2, 0, f, (h - 1) / 2, 0, 0, 1])
            info.header.frame_id, info.header.stamp = "camera_infra1_optical_frame", stamp
            info_pub.publish(info)
            img_pub.publish(conv.array_to_image(image, "mono8", header=info.header))
            cloud = conv.fields_to_pointcloud2({"x": p_lidar[:, 0], "y": p_lidar[:, 1], "z": p_lidar[:, 2]},
                                               frame_id="lidar_link", stamp=stamp)
            cloud_pub.publish(cloud)
            spin_until(node, lambda: False, 0.1)
        output = fusion.output()
        assert fusion.stop() == 0, output
    msg = next((m for m in fused if np.isfinite(conv.pointcloud2_to_fields(m, ["ir"])["ir"]).all()), None)
    assert msg is not None, output
    cols = conv.pointcloud2_to_fields(msg, ["x", "ir"])
    np.testing.assert_allclose(cols["x"], p_lidar[:, 0])
    np.testing.assert_array_equal(cols["ir"], image[vv.ravel(), uu.ravel()].astype(np.float32))


@pytest.mark.data
def test_kitti_colour_only_fusion_without_ir_or_depth_to_colour_extrinsics(ros_node, shared_data):
    """KITTI image_2 is a colour camera with no IR: ir_topic none, the colour image and its
    camera_info, lidar_node's extrinsics from calib.txt straight into camera 2. The fused rgb
    of every clearly visible point is the image's pixel at P2 @ R0_rect @ Tr @ X."""
    from PIL import Image as PILImage

    from depth_ai_nodes.core.calibration import parse_kitti_calib
    from depth_ai_nodes.core.pointcloud import unpack_rgb

    kitti = shared_data / "kitti"
    rgb = np.asarray(PILImage.open(kitti / "image_2" / "000000.png").convert("RGB"))
    calib = parse_kitti_calib(kitti / "calib" / "000000.txt")
    h, w = rgb.shape[:2]
    img_pub = ros_node.create_publisher(Image, "/kitti/image", RELIABLE)
    info_pub = ros_node.create_publisher(CameraInfo, "/kitti/camera_info", RELIABLE)
    fused: list = []
    ros_node.create_subscription(PointCloud2, "/fused/points", fused.append, RELIABLE)
    n0 = np.fromfile(kitti / "velodyne" / "000000.bin", np.float32).size // 4
    params = {"ir_topic": "none", "color_topic": "/kitti/image", "color_info_topic": "/kitti/camera_info",
              "odom_topic": "none", "qos": "reliable", **SLOW}

    def done() -> bool:
        return any(m.width == n0 and "rgb" in [f.name for f in m.fields]
                   and np.isfinite(conv.pointcloud2_to_fields(m, ["rgb"])["rgb"]).any() for m in fused)

    with NodeProcess.node("lidar_node", {"source": "kitti", "kitti_path": str(kitti), "qos": "reliable"}) as lidar, \
            NodeProcess.node("lidar_fusion_node", params) as fusion:
        deadline = time.monotonic() + 40.0
        while time.monotonic() < deadline and not done():
            info = CameraInfo(width=w, height=h, distortion_model="plumb_bob", d=[0.0] * 5,
                              k=calib.P[2][:, :3].reshape(-1).tolist())
            info.header.frame_id = "kitti_camera_2"
            info.header.stamp = conv.ns_to_stamp(time.time_ns())
            info_pub.publish(info)
            img_pub.publish(conv.array_to_image(rgb, "rgb8", header=info.header))
            spin_until(ros_node, lambda: False, 0.03)
        outputs = lidar.output() + fusion.output()
        assert lidar.stop() == 0 and fusion.stop() == 0
    msg = next((m for m in fused if m.width == n0 and "rgb" in [f.name for f in m.fields]
                and np.isfinite(conv.pointcloud2_to_fields(m, ["rgb"])["rgb"]).any()), None)
    assert msg is not None, outputs
    assert [f.name for f in msg.fields] == ["x", "y", "z", "intensity", "rgb"]  # no ir field
    seen, values, iv, iu = projected_pixels(msg, "rgb", calib.projection(2))
    assert 15_000 < seen < 21_000  # ~20k in the image, minus the occluded
    r, g, b = unpack_rgb(values)
    np.testing.assert_array_equal(np.stack([r, g, b], 1), rgb[iv, iu])
