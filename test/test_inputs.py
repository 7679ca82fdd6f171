"""The message boundary (ros/inputs.py) and time sanity (core/stamps.py), without DDS.

Each case of issue #11 that used to crash or poison a node is a reader test here: the
reader must turn it into a Rejected with the right reason (or a note, with the rest of
the message used). The node-level tests (test_fusion_node, test_inference_node,
test_reliability) check that the nodes route them through this boundary.
"""
from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from depth_ai_nodes.core.rejection import Reason, Rejected
from depth_ai_nodes.core.sync import ApproxTimeMatcher
from depth_ai_nodes.core.stamps import SequenceGaps, StampGuard, StampPolicy
from depth_ai_nodes.msg import Extrinsics
from depth_ai_nodes.ros import conversions as conv
from depth_ai_nodes.ros import inputs
from depth_ai_nodes.ros.inputs import InputGate


def cloud_msg(n: int = 50, t: np.ndarray | None = None) -> PointCloud2:
    rng = np.random.default_rng(1)
    cols = {"x": rng.uniform(-1, 1, n).astype(np.float32), "y": rng.uniform(-1, 1, n).astype(np.float32),
            "z": rng.uniform(2, 5, n).astype(np.float32), "intensity": np.ones(n, np.float32)}
    if t is not None:
        cols["t"] = t
    return conv.fields_to_pointcloud2(cols, frame_id="lidar_link", stamp=1_000_000_000)


def reason_of(fn, *args) -> Reason:
    with pytest.raises(Rejected) as err:
        fn(*args)
    return err.value.reason


# --- clouds -----------------------------------------------------------------------------------
def test_a_coordinate_field_with_count_above_one_is_rejected_not_a_crash():
    msg = cloud_msg()
    msg.fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype,
                             count=3 if f.name == "x" else 1) for f in msg.fields]
    msg.fields[1].offset = 12  # y after the 3 floats of x ...
    msg.fields[2].offset = 16
    msg.fields[3].offset = 20
    msg.point_step = 24
    msg.row_step = 24 * msg.width
    msg.data = np.zeros(24 * msg.width, np.uint8).tobytes()
    assert reason_of(inputs.cloud, msg) is Reason.UNSUPPORTED


def test_empty_and_all_nan_clouds_have_their_own_reasons():
    empty = cloud_msg()
    empty.width, empty.row_step, empty.data = 0, 0, b""
    assert reason_of(inputs.cloud, empty) is Reason.EMPTY
    nan = cloud_msg()
    arr = np.frombuffer(bytes(nan.data), np.float32).copy()
    arr[:] = np.nan
    nan.data = arr.tobytes()
    assert reason_of(inputs.cloud, nan) is Reason.NON_FINITE


def test_non_finite_or_absolute_point_times_are_ignored_with_a_note_and_the_points_kept():
    t = np.linspace(0, 0.1, 50).astype(np.float32)
    t[7] = np.inf
    data = inputs.cloud(cloud_msg(t=t))
    assert "t" not in data.cols and data.size == 50
    assert [n.reason for n in data.notes] == [Reason.NON_FINITE]
    absolute = inputs.cloud(cloud_msg(t=np.full(50, 1.7e9, np.float64)))  # a driver's absolute time
    assert "t" not in absolute.cols and absolute.notes[0].reason is Reason.OUT_OF_RANGE
    ns = inputs.cloud(cloud_msg(t=np.arange(50, dtype=np.uint32) * 1000))  # integer t in ns
    assert ns.cols["t"][-1] == pytest.approx(49e-6) and not ns.notes


def test_points_with_nan_coordinates_are_dropped_and_counted():
    msg = cloud_msg()
    arr = np.frombuffer(bytes(msg.data), np.float32).copy().reshape(-1, 4)
    arr[:5, 0] = np.nan
    msg.data = arr.tobytes()
    data = inputs.cloud(msg)
    assert data.size == 45 and data.dropped_points == 5
    assert np.isfinite(data.cols["x"]).all()


def test_truncated_and_overlapping_layouts_are_malformed():
    short = cloud_msg()
    short.data = bytes(short.data)[:-3]
    assert reason_of(inputs.cloud, short) is Reason.MALFORMED
    step = cloud_msg()
    step.point_step = 6
    assert reason_of(inputs.cloud, step) is Reason.MALFORMED
    bad_type = cloud_msg()
    bad_type.fields[0].datatype = 42
    assert reason_of(inputs.cloud, bad_type) is Reason.MALFORMED


# --- images and camera_info ---------------------------------------------------------------------
def image_msg(encoding: str, w: int = 8, h: int = 6, channels: int = 1, dtype=np.uint8) -> Image:
    arr = np.zeros((h, w, channels) if channels > 1 else (h, w), dtype)
    return conv.array_to_image(arr, encoding, frame_id="cam", stamp=1)


def test_a_colour_image_on_the_ir_topic_is_rejected_not_read_as_interleaved_bytes():
    assert reason_of(inputs.mono_image, image_msg("rgb8", channels=3)) is Reason.UNSUPPORTED
    assert inputs.mono_image(image_msg("mono8")).array.shape == (6, 8)
    assert inputs.mono_image(image_msg("mono16", dtype=np.uint16)).array.dtype == np.uint16


def test_image_buffers_that_disagree_with_their_header_are_malformed():
    msg = image_msg("mono8")
    msg.step = 3
    assert reason_of(inputs.mono_image, msg) is Reason.MALFORMED
    msg = image_msg("mono8")
    msg.data = bytes(msg.data)[:-1]
    assert reason_of(inputs.mono_image, msg) is Reason.MALFORMED
    huge = Image(encoding="mono8", width=100000, height=100000, step=100000)
    assert reason_of(inputs.mono_image, huge) is Reason.OUT_OF_RANGE
    assert reason_of(inputs.mono_image, Image(encoding="mono8")) is Reason.EMPTY


def test_depth_images_come_out_in_metres():
    mm = conv.array_to_image(np.full((4, 5), 1500, np.uint16), "16UC1")
    assert inputs.depth_image(mm).array == pytest.approx(np.full((4, 5), 1.5))
    assert reason_of(inputs.depth_image, image_msg("rgb8", channels=3)) is Reason.UNSUPPORTED


def info_msg(**over) -> CameraInfo:
    info = CameraInfo(width=640, height=480, distortion_model="plumb_bob", d=[0.0] * 5,
                      k=[600.0, 0, 320, 0, 600.0, 240, 0, 0, 1], r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                      p=[600.0, 0, 320, 0, 0, 600.0, 240, 0, 0, 0, 1, 0])
    for k, v in over.items():
        setattr(info, k, v)
    return info


def test_camera_info_with_nan_or_no_focal_length_is_rejected():
    assert inputs.camera_info(info_msg()).width == 640
    assert reason_of(inputs.camera_info, info_msg(k=[math.nan, 0, 320, 0, 600.0, 240, 0, 0, 1])) \
        is Reason.NON_FINITE
    assert reason_of(inputs.camera_info, info_msg(d=[0.0, math.inf, 0, 0, 0])) is Reason.NON_FINITE
    assert reason_of(inputs.camera_info, info_msg(k=[0.0] * 9)) is Reason.OUT_OF_RANGE
    assert reason_of(inputs.camera_info, info_msg(width=0)) is Reason.EMPTY


# --- motion and extrinsics ----------------------------------------------------------------------
def test_odometry_and_twist_with_nan_or_absurd_values_are_rejected():
    odom = Odometry()
    odom.twist.twist.linear.x = 1.0
    assert inputs.twist(odom).linear[0] == 1.0
    odom.twist.twist.angular.z = math.nan
    assert reason_of(inputs.twist, odom) is Reason.NON_FINITE
    fast = TwistStamped()
    fast.twist.linear.x = 3e5
    assert reason_of(inputs.twist, fast) is Reason.OUT_OF_RANGE


def test_extrinsics_must_be_a_rigid_transform():
    ok = conv.extrinsics_to_msg(np.eye(4), "a", "b")
    assert inputs.extrinsics(ok) == pytest.approx(np.eye(4))
    bad = Extrinsics(rotation=[2.0, 0, 0, 0, 1, 0, 0, 0, 1], translation=[0.0, 0, 0])
    assert reason_of(inputs.extrinsics, bad) is Reason.OUT_OF_RANGE
    nan = Extrinsics(rotation=[1.0, 0, 0, 0, 1, 0, 0, 0, 1], translation=[math.nan, 0, 0])
    assert reason_of(inputs.extrinsics, nan) is Reason.NON_FINITE


# --- time sanity --------------------------------------------------------------------------------
def test_stamps_far_ahead_of_the_clock_are_rejected_and_old_recordings_pass_by_default():
    guard = StampGuard(StampPolicy(max_ahead_s=2.0))
    now = 1_800_000_000.0
    assert guard.check("ir", now - 0.01, now) is False
    with pytest.raises(Rejected) as err:
        guard.check("ir", now + 3600.0, now)
    assert err.value.reason is Reason.BAD_STAMP and "ahead" in err.value.detail
    assert guard.check("ir", 1_300_000_000.0, now) is True  # a 2011 recording: a new timeline
    assert guard.check("ir", 1_300_000_000.1, now) is False
    aged = StampGuard(StampPolicy(max_ahead_s=0, max_age_s=1.0))
    with pytest.raises(Rejected):
        aged.check("ir", now - 5.0, now)
    sim = StampGuard(StampPolicy(max_ahead_s=2.0))
    assert sim.check("ir", 50.0, 0.0) is False  # sim time not started: only the backwards rule


def test_a_spike_ahead_is_forgotten_when_the_stream_goes_on_and_matching_recovers():
    """The poisoning of issue #11: one frame 1.5 s ahead (inside the clock tolerance) used to
    stay 'the newest frame' for ever. The guard flags the timeline restart; the node clears."""
    guard = StampGuard(StampPolicy(max_ahead_s=2.0, reset_after_s=1.0))
    matcher = ApproxTimeMatcher(slop=0.05, timeout=0.1, silent_after=10.0)
    now = 100.0
    for t in (10.0, 10.1, 11.6):  # the last one is the spike
        guard.check("ir", t, now)
        matcher.add_frame(t, f"frame {t}", now)
    assert guard.check("ir", 10.2, now) is True  # back by 1.4 s: reset
    matcher.frames.clear()
    matcher.add_frame(10.2, "frame 10.2", now)
    (m,) = matcher.add_cloud(10.19, "cloud", now) + matcher.poll(now + 1.0)
    assert m.frame == "frame 10.2"


def test_sequence_gaps_count_what_was_lost_upstream_and_survive_publisher_restarts():
    gaps = SequenceGaps()
    assert [gaps.update("a", s) for s in (1, 2, 5, 6)] == [0, 0, 2, 0]
    assert gaps.update("a", 1) == 0 and gaps.update("a", 3) == 1   # restarted publisher
    assert gaps.update("b", 7) == 0 and gaps.missing == 3
    assert gaps.update("c", None) == 0


# --- the gate: counts per reason, one log line per reason per period ------------------------------
class FakeNode:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.timers = []
        log = lambda msg, **_throttle: self.lines.append(msg)  # noqa: E731
        logger = SimpleNamespace(error=log, warn=log, info=log)
        self.get_logger = lambda: logger
        self.get_clock = lambda: SimpleNamespace(now=lambda: SimpleNamespace(nanoseconds=time.time_ns()))
        self.create_timer = lambda period, cb: self.timers.append(cb)


class FakeDiag:
    def __init__(self) -> None:
        self.status: dict[str, tuple] = {}

    def set(self, component, level, message, **values) -> None:
        self.status[component] = (level, message, values)


def test_a_flood_of_bad_input_logs_once_per_reason_with_the_latest_detail():
    node, diag = FakeNode(), FakeDiag()
    gate = InputGate(node, diag, log_period_s=0.3)
    for i in range(1000):  # the text differs every time (byte counts): still one line per reason
        gate.reject("cloud", Rejected(Reason.MALFORMED, f"data has {i} bytes"))
        gate.reject("ir", Rejected(Reason.UNSUPPORTED, f"encoding #{i}"))
    assert len(node.lines) == 2
    level, message, values = diag.status["inputs"]
    assert values["rejected malformed"] == 1000 and values["rejected unsupported"] == 1000
    assert values["rejected from cloud"] == 1000 and "999" in message
    time.sleep(0.35)
    gate.flush()
    assert len(node.lines) == 4 and "data has 999 bytes" in node.lines[2] and "999 malformed" in node.lines[2]


def test_the_gate_reads_checks_stamps_and_returns_none_on_rejection():
    node, diag = FakeNode(), FakeDiag()
    gate = InputGate(node, diag)
    good = image_msg("mono8")
    good.header.stamp = conv.ns_to_stamp(time.time_ns())
    assert gate.read("ir", inputs.mono_image, good) is not None
    future = image_msg("mono8")
    future.header.stamp = conv.ns_to_stamp(time.time_ns() + 3600 * 10**9)
    assert gate.read("ir", inputs.mono_image, future) is None
    assert diag.status["inputs"][2]["rejected bad_stamp"] == 1


def test_transforms_with_nan_or_a_non_unit_quaternion_never_enter_the_frame_tree():
    from depth_ai_nodes.core.transforms import RigidTransform

    good = conv.transform_to_tf(RigidTransform.from_xyz_quat((0.1, 0, 0), (0, 0, 0, 1)), "base", "cam")
    assert inputs.transform(good).matrix()[0, 3] == pytest.approx(0.1)
    nan = conv.transform_to_tf(RigidTransform.from_xyz_quat((0.1, 0, 0), (0, 0, 0, 1)), "base", "cam")
    nan.transform.translation.y = math.nan
    assert reason_of(inputs.transform, nan) is Reason.NON_FINITE
    zero = conv.transform_to_tf(RigidTransform.from_xyz_quat((0.1, 0, 0), (0, 0, 0, 1)), "base", "cam")
    zero.transform.rotation.w = 0.0
    assert reason_of(inputs.transform, zero) is Reason.OUT_OF_RANGE
    same = conv.transform_to_tf(RigidTransform.from_xyz_quat((0.1, 0, 0), (0, 0, 0, 1)), "cam", "cam")
    assert reason_of(inputs.transform, same) is Reason.MALFORMED


def test_latency_is_reported_only_for_stamps_from_this_clock():
    from depth_ai_nodes.core.stamps import clock_latency

    assert clock_latency(1000.0, 999.95) == pytest.approx(0.05)
    assert clock_latency(1_796_000_000.0, 1_317_000_000.0) is None   # a 2011 recording
    assert clock_latency(1000.0, 1000.5) is None                     # another clock, ahead


def test_a_newest_only_subscription_decodes_the_newest_queued_message_and_counts_the_rest(ros_node):
    """The fusion node's scans: under overload the reader's history must not become latency
    (depth x period) nor CPU spent decoding scans the worker would drop; skipped ones are
    counted as superseded, not as lost."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from depth_ai_nodes.ros.diagnostics import Diagnostics

    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    gate = InputGate(ros_node, Diagnostics(ros_node))
    got: dict[str, list[int]] = {"newest": [], "every": []}
    stamp_of = lambda m: conv.stamp_to_ns(m.header.stamp)  # noqa: E731
    gate.subscribe(Image, "/gate_test/newest", lambda m: got["newest"].append(stamp_of(m)), qos, newest_only=True)
    gate.subscribe(Image, "/gate_test/every", lambda m: got["every"].append(stamp_of(m)), qos)
    sender = rclpy.create_node("gate_test_sender", context=ros_node.context)
    try:
        pubs = [sender.create_publisher(Image, t, qos) for t in ("/gate_test/newest", "/gate_test/every")]
        deadline = time.monotonic() + 10.0
        while any(p.get_subscription_count() == 0 for p in pubs) and time.monotonic() < deadline:
            time.sleep(0.05)
        for burst in (range(1, 7), range(7, 8)):
            for k in burst:
                for p in pubs:
                    p.publish(conv.array_to_image(np.zeros((2, 2), np.uint8), "mono8", frame_id="c", stamp=k))
            time.sleep(0.5)  # all of the burst in the readers' histories before the node takes any
            for _ in range(20):
                rclpy.spin_once(ros_node, timeout_sec=0.05)
        assert got["every"] == [1, 2, 3, 4, 5, 6, 7]
        assert got["newest"] == [6, 7]
        assert gate.superseded("/gate_test/newest") == 5 and gate.superseded("/gate_test/every") == 0
        assert gate.missing("/gate_test/newest") == 0  # taken, so not a sequence gap
    finally:
        sender.destroy_node()


@pytest.mark.parametrize("kind", ["single", "events"])
def test_sequence_gaps_and_newest_only_work_under_either_executor(ros_node, monkeypatch, kind):
    """The nodes spin rclpy's EventsExecutor, which calls a message-info callback with one
    (msg, info) tuple where the Python executor passes two arguments (and its spin() runs
    nothing): the gate's callbacks must count the same under both. A reader two deep that
    misses four messages counts four lost; a newest-only one hands on the newest."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from depth_ai_nodes.ros.diagnostics import Diagnostics
    from depth_ai_nodes.ros.executor import EXECUTOR_ENV, executor_kind, make_executor

    monkeypatch.setenv(EXECUTOR_ENV, kind)
    if executor_kind() != kind:
        pytest.skip(f"this rclpy has no {kind} executor")
    executor, _ = make_executor()
    executor.add_node(ros_node)
    shallow = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
    gate = InputGate(ros_node, Diagnostics(ros_node))
    got: dict[str, list[int]] = {"shallow": [], "newest": []}
    stamp_of = lambda m: conv.stamp_to_ns(m.header.stamp)  # noqa: E731
    gate.subscribe(Image, f"/gate_exec_{kind}/shallow", lambda m: got["shallow"].append(stamp_of(m)), shallow)
    gate.subscribe(Image, f"/gate_exec_{kind}/newest", lambda m: got["newest"].append(stamp_of(m)),
                   QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE), newest_only=True)
    sender = rclpy.create_node(f"gate_exec_sender_{kind}", context=ros_node.context)
    try:
        pubs = [sender.create_publisher(Image, f"/gate_exec_{kind}/{t}", QoSProfile(depth=10))
                for t in ("shallow", "newest")]
        deadline = time.monotonic() + 10.0
        while any(p.get_subscription_count() == 0 for p in pubs) and time.monotonic() < deadline:
            time.sleep(0.05)
        for burst in (range(1, 2), range(2, 8)):  # 1 sets the baseline; of 2..7 the reader keeps 6, 7
            for k in burst:
                for p in pubs:
                    p.publish(conv.array_to_image(np.zeros((2, 2), np.uint8), "mono8", frame_id="c", stamp=k))
            time.sleep(0.5)
            for _ in range(20):
                executor.spin_once(timeout_sec=0.05)
        assert got["shallow"] == [1, 6, 7]
        assert gate.missing(f"/gate_exec_{kind}/shallow") == 4
        assert got["newest"] == [1, 7] and gate.superseded(f"/gate_exec_{kind}/newest") == 5
    finally:
        executor.shutdown()
        sender.destroy_node()
