"""Seeded malformed-message fuzzing of the subscribing nodes over real DDS (issue #11).

`malformed(kind, rng)` builds one message of a ROS type that a node's boundary must refuse:
every mutation breaks a rule the readers in ros/inputs.py check (a buffer that disagrees with
its header, an encoding the topic does not take, NaN/Inf, absurd values, empty, far-future
stamps, fields with count > 1 ...). `run_fuzz` starts lidar_fusion_node and
depth_inference_node, checks their output on valid input, sends `count` malformed messages
spread over all their input topics, then checks that both are alive, that the rejections
show in /diagnostics, and that the same valid input gives the same output again.

Used by bench/bench_fuzz.py (>= 10,000 messages) and test/test_fuzz.py (a reduced run).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from depth_ai_nodes.msg import Extrinsics
from depth_ai_nodes.ros import conversions as conv
from harness import NodeProcess, spin_until

RELIABLE = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
W, H, F = 64, 48, 50.0
BAD = [math.nan, math.inf, -math.inf]


def _now_ns() -> int:
    return time.time_ns()


def valid_info(stamp_ns: int, frame: str = "fz_cam") -> CameraInfo:
    info = CameraInfo(width=W, height=H, distortion_model="plumb_bob", d=[0.0] * 5,
                      k=[F, 0, W / 2, 0, F, H / 2, 0, 0, 1], r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                      p=[F, 0, W / 2, 0, 0, F, H / 2, 0, 0, 0, 1, 0])
    info.header.frame_id = frame
    info.header.stamp = conv.ns_to_stamp(stamp_ns)
    return info


def valid_cloud(stamp_ns: int, n: int = 300) -> PointCloud2:
    rng = np.random.default_rng(7)
    cols = {"x": rng.uniform(-0.5, 0.5, n).astype(np.float32), "y": rng.uniform(-0.4, 0.4, n).astype(np.float32),
            "z": rng.uniform(2.0, 3.0, n).astype(np.float32), "intensity": np.ones(n, np.float32)}
    return conv.fields_to_pointcloud2(cols, frame_id="fz_lidar", stamp=stamp_ns)


def _image(rng: np.random.Generator, accept: str) -> Image:
    """A malformed Image for a topic that takes `accept` (mono, colour or depth)."""
    now = _now_ns()
    good = {"mono": ("mono8", 1, np.uint8), "color": ("rgb8", 3, np.uint8), "depth": ("16UC1", 1, np.uint16)}[accept]
    enc, ch, dt = good
    arr = np.zeros((H, W, ch) if ch > 1 else (H, W), dt)
    msg = conv.array_to_image(arr, enc, frame_id="fz_cam", stamp=now)
    kind = int(rng.integers(9))
    if kind == 0:
        msg.encoding = str(rng.choice(["yuv422", "", "rgb16", "bayer_rggb8", "64FC1", "\x00", "mono8 "]))
    elif kind == 1:  # an encoding this topic does not take
        msg.encoding = {"mono": "rgb8", "color": "32FC1", "depth": "rgb8"}[accept]
        msg.step = W * {"rgb8": 3, "32FC1": 4}[msg.encoding]
        msg.data = bytes(msg.step * H)
    elif kind == 2:
        msg.step = int(rng.integers(0, max(1, msg.step)))
    elif kind == 3:
        msg.data = bytes(msg.data)[: int(rng.integers(0, len(msg.data)))]
    elif kind == 4:
        msg.data = bytes(msg.data) + bytes(int(rng.integers(1, 64)))
    elif kind == 5:
        msg.width, msg.height = 0, int(rng.integers(0, 5))
    elif kind == 6:
        msg.width, msg.height = int(rng.integers(9000, 2**31)), int(rng.integers(9000, 2**31))
    elif kind == 7:
        msg.header.stamp = conv.ns_to_stamp(now + int(rng.integers(3, 10**6)) * 10**9)  # far ahead
    else:
        msg.height = H + int(rng.integers(1, 100))
    return msg


def _info(rng: np.random.Generator) -> CameraInfo:
    info = valid_info(_now_ns())
    kind = int(rng.integers(6))
    if kind == 0:
        k = list(info.k)
        k[int(rng.choice([0, 2, 4, 5]))] = float(rng.choice(BAD))
        info.k = k
    elif kind == 1:
        info.d = [float(rng.choice(BAD))] + [0.0] * 4
    elif kind == 2:
        info.k = [float(-rng.uniform(0, 100)), 0, 32, 0, 50.0, 24, 0, 0, 1]
    elif kind == 3:
        info.width = 0
    elif kind == 4:
        info.binning_x = int(rng.integers(W + 1, 10**6))
    else:
        info.roi.x_offset, info.roi.width, info.roi.height = 60, 40, 10
    return info


def _cloud(rng: np.random.Generator) -> PointCloud2:
    msg = valid_cloud(_now_ns(), 50)
    kind = int(rng.integers(9))
    fields = list(msg.fields)
    if kind == 0:  # count > 1 on a coordinate
        i = int(rng.integers(3))
        fields[i] = PointField(name=fields[i].name, offset=fields[i].offset, datatype=7,
                               count=int(rng.integers(2, 5)))
        msg.fields = fields
    elif kind == 1:
        gone = str(rng.choice(["x", "y", "z"]))
        msg.fields = [f for f in fields if f.name != gone]
    elif kind == 2:
        fields[0] = PointField(name="x", offset=0, datatype=int(rng.choice([0, 9, 200])), count=1)
        msg.fields = fields
    elif kind == 3:
        fields[2] = PointField(name="z", offset=int(rng.integers(14, 1000)), datatype=7, count=1)
        msg.fields = fields
    elif kind == 4:
        msg.data = bytes(msg.data)[: int(rng.integers(0, len(msg.data)))]
    elif kind == 5:
        msg.width = int(rng.integers(51, 10**6))
    elif kind == 6:
        msg.width, msg.row_step, msg.data = 0, 0, b""
    elif kind == 7:
        arr = np.frombuffer(bytes(msg.data), np.float32).copy()
        arr[:] = float(rng.choice(BAD))
        msg.data = arr.tobytes()
    else:
        msg.point_step = int(rng.integers(0, 12))
    return msg


def _twist(rng: np.random.Generator, typ: type) -> Any:
    msg = typ()
    msg.header.stamp = conv.ns_to_stamp(_now_ns())
    tw = msg.twist.twist if typ is Odometry else msg.twist
    vec = [tw.linear, tw.angular][int(rng.integers(2))]
    setattr(vec, str(rng.choice(["x", "y", "z"])),
            float(rng.choice(BAD + [1e5, -1e7])) if vec is tw.linear else float(rng.choice(BAD + [1e3])))
    return msg


def _extrinsics(rng: np.random.Generator) -> Extrinsics:
    msg = Extrinsics(rotation=[1.0, 0, 0, 0, 1, 0, 0, 0, 1], translation=[0.0, 0, 0])
    msg.header.frame_id, msg.child_frame_id = "fz_lidar", "fz_cam"
    kind = int(rng.integers(3))
    if kind == 0:
        rot = list(msg.rotation)
        rot[int(rng.integers(9))] = float(rng.choice(BAD))
        msg.rotation = rot
    elif kind == 1:
        msg.rotation = [float(v) for v in rng.uniform(-2, 2, 9)]
    else:
        msg.translation = [float(rng.uniform(1e5, 1e9)), 0.0, 0.0]
    return msg


MAKERS: dict[str, Callable[[np.random.Generator], Any]] = {
    "mono": lambda r: _image(r, "mono"), "color": lambda r: _image(r, "color"),
    "depth": lambda r: _image(r, "depth"), "info": _info, "cloud": _cloud,
    "odom": lambda r: _twist(r, Odometry), "twist": lambda r: _twist(r, TwistStamped),
    "extrinsics": _extrinsics,
}


def malformed(kind: str, rng: np.random.Generator) -> Any:
    return MAKERS[kind](rng)


# (topic, maker kind, message type, node) for every input the two nodes subscribe to here
TARGETS = [
    ("/fz/points", "cloud", PointCloud2, "lidar_fusion_node"),
    ("/fz/ir", "mono", Image, "lidar_fusion_node"),
    ("/fz/ir_info", "info", CameraInfo, "lidar_fusion_node"),
    ("/fz/odom", "odom", Odometry, "lidar_fusion_node"),
    ("/fz/twist", "twist", TwistStamped, "lidar_fusion_node"),
    ("/fz/extrinsics", "extrinsics", Extrinsics, "lidar_fusion_node"),
    ("/fz/color", "color", Image, "depth_inference"),
    ("/fz/color_info", "info", CameraInfo, "depth_inference"),
    ("/fz/depth", "depth", Image, "depth_inference"),
]
SHALLOW = {"/fz/extrinsics", "/fz/points"}  # subscription history depth 1 / 5 in the node
FUSION_PARAMS = {"cloud_topic": "/fz/points", "ir_topic": "/fz/ir", "ir_info_topic": "/fz/ir_info",
                 "odom_topic": "/fz/odom", "twist_topic": "/fz/twist", "extrinsics_source": "topic",
                 "extrinsics_topic": "/fz/extrinsics", "qos": "reliable", "sync_reference": "stamp",
                 "sync_timeout": 0.3, "splat_px": 0}
INFERENCE_PARAMS = {"color_topic": "/fz/color", "color_info_topic": "/fz/color_info", "depth_topic": "/fz/depth",
                    "input_qos": "reliable", "qos": "reliable", "intra_op_threads": 1}


@dataclass
class FuzzResult:
    sent: dict[str, int] = field(default_factory=dict)           # per node
    sent_topics: dict[str, int] = field(default_factory=dict)
    streams: dict[str, dict[str, int]] = field(default_factory=dict)  # node -> rejected per stream
    rejected: dict[str, int] = field(default_factory=dict)       # per node, from /diagnostics
    lost: dict[str, int] = field(default_factory=dict)           # per node: sequence gaps + superseded
    by_reason: dict[str, dict[str, int]] = field(default_factory=dict)
    alive: dict[str, bool] = field(default_factory=dict)
    fused_same_after: bool = False
    depth_same_after: bool = False
    seconds: float = 0.0
    logs: dict[str, str] = field(default_factory=dict)


class _Client:
    def __init__(self, node) -> None:
        self.node = node
        self.pubs = {t: node.create_publisher(typ, t, LATCHED if typ is Extrinsics else RELIABLE)
                     for t, _, typ, _ in TARGETS}
        self.fused: list[PointCloud2] = []
        self.depth: list[Image] = []
        self.diags: list[DiagnosticArray] = []
        node.create_subscription(PointCloud2, "/fused/points", self.fused.append, RELIABLE)
        node.create_subscription(Image, "/depth_inference/depth", self.depth.append, RELIABLE)
        node.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, 100)
        self.image = (np.arange(W * H) % 251).astype(np.uint8).reshape(H, W)

    def send_valid_extrinsics(self) -> None:
        self.pubs["/fz/extrinsics"].publish(conv.extrinsics_to_msg(np.eye(4), "fz_lidar", "fz_cam"))

    def fused_ir(self, timeout: float) -> np.ndarray | None:
        """IR and info at `now`, a cloud at `now`: the fused cloud's ir field."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = _now_ns()
            self.pubs["/fz/ir_info"].publish(valid_info(now))
            self.pubs["/fz/ir"].publish(conv.array_to_image(self.image, "mono8", frame_id="fz_cam", stamp=now))
            self.pubs["/fz/points"].publish(valid_cloud(now))
            if spin_until(self.node, lambda: any(conv.stamp_to_ns(f.header.stamp) == now for f in self.fused), 1.5):
                f = next(f for f in self.fused if conv.stamp_to_ns(f.header.stamp) == now)
                ir = conv.pointcloud2_to_fields(f, ["ir"])["ir"]
                if np.isfinite(ir).mean() > 0.5:
                    return ir
        return None

    def inferred(self, timeout: float) -> np.ndarray | None:
        deadline = time.monotonic() + timeout
        rgb = np.dstack([self.image] * 3)
        depth = np.full((H, W), 2000, np.uint16)
        depth[10:20, 10:30] = 0
        while time.monotonic() < deadline:
            now = _now_ns()
            self.pubs["/fz/color_info"].publish(valid_info(now))
            self.pubs["/fz/depth"].publish(conv.array_to_image(depth, "16UC1", frame_id="fz_cam", stamp=now))
            self.pubs["/fz/color"].publish(conv.array_to_image(rgb, "rgb8", frame_id="fz_cam", stamp=now))
            if spin_until(self.node, lambda: any(conv.stamp_to_ns(d.header.stamp) == now for d in self.depth), 2.0):
                d = next(d for d in self.depth if conv.stamp_to_ns(d.header.stamp) == now)
                return np.frombuffer(d.data, np.float32).reshape(d.height, d.width).copy()
        return None

    def streams(self, node_name: str) -> dict[str, int]:
        for arr in reversed(self.diags):
            for s in arr.status:
                if s.name == f"{node_name}: inputs":
                    return {kv.key[len("rejected from "):]: int(kv.value) for kv in s.values
                            if kv.key.startswith("rejected from ")}
        return {}

    def rejected(self, node_name: str) -> tuple[int, dict[str, int]]:
        for arr in reversed(self.diags):
            for s in arr.status:
                if s.name == f"{node_name}: inputs":
                    vals = {kv.key: kv.value for kv in s.values}
                    reasons = {k[len("rejected "):]: int(v) for k, v in vals.items()
                               if k.startswith("rejected ") and not k.startswith("rejected from")
                               and k != "rejected total"}
                    return int(vals.get("rejected total", 0)), reasons
        return 0, {}

    def lost(self, node_name: str) -> int:
        for arr in reversed(self.diags):
            for s in arr.status:
                if s.name == f"{node_name}: inputs":
                    vals = {kv.key: kv.value for kv in s.values}
                    # taken but never decoded (a newer one was queued) is the same kind of loss
                    return int(vals.get("lost before the node (sequence gaps)", 0)) + \
                        int(vals.get("superseded (a newer one was queued)", 0))
        return 0


def run_fuzz(node, count: int, seed: int = 0, rate_hz: float = 400.0,
             progress: Callable[[str], None] | None = None) -> FuzzResult:
    """Start both nodes, fuzz them with `count` malformed messages, report (see module doc)."""
    res = FuzzResult()
    rng = np.random.default_rng(seed)
    client = _Client(node)
    say = progress or (lambda s: None)
    with NodeProcess.node("lidar_fusion_node", FUSION_PARAMS) as fusion, \
            NodeProcess.node("depth_inference_node", INFERENCE_PARAMS) as inference:
        procs = {"lidar_fusion_node": fusion, "depth_inference": inference}
        for topic, pub in client.pubs.items():
            if not spin_until(node, lambda p=pub: p.get_subscription_count() > 0, 30.0):
                raise RuntimeError(f"no subscriber on {topic}:\n{fusion.output()[-1500:]}"
                                   f"\n{inference.output()[-1500:]}")
        client.send_valid_extrinsics()
        ir_before = client.fused_ir(20.0)
        depth_before = client.inferred(30.0)
        if ir_before is None or depth_before is None:
            raise RuntimeError("no output on valid input before fuzzing:\n"
                               f"{fusion.output()[-2000:]}\n{inference.output()[-2000:]}")
        say("valid output before fuzzing: ok")
        t0 = time.monotonic()
        for i in range(count):
            topic, kind, _, target = TARGETS[int(rng.integers(len(TARGETS)))]
            client.pubs[topic].publish(malformed(kind, rng))
            res.sent[target] = res.sent.get(target, 0) + 1
            res.sent_topics[topic] = res.sent_topics.get(topic, 0) + 1
            if topic in SHALLOW:  # the node keeps 1 (latched) or 5 of these: let it take each
                spin_until(node, lambda: False, 0.004)
            if i % 10 == 9:  # keep the pace (and let this process take the outputs)
                spin_until(node, lambda: False, max(0.0, (i + 1) / rate_hz - (time.monotonic() - t0)))
            if progress and i % 2000 == 1999:
                say(f"{i + 1}/{count} sent")
        res.seconds = time.monotonic() - t0
        client.send_valid_extrinsics()  # the latched one was replaced by malformed ones in the cache
        sent = dict(res.sent)
        spin_until(node, lambda: all(client.rejected(n)[0] + client.lost(n) >= sent.get(n, 0) for n in procs), 30.0)
        for n, p in procs.items():
            res.rejected[n], res.by_reason[n] = client.rejected(n)
            res.lost[n] = client.lost(n)
            res.streams[n] = client.streams(n)
            res.alive[n] = p.alive()
        ir_after = client.fused_ir(20.0)
        depth_after = client.inferred(30.0)
        res.fused_same_after = ir_after is not None and np.array_equal(ir_after, ir_before, equal_nan=True)
        res.depth_same_after = depth_after is not None and np.allclose(depth_after, depth_before, equal_nan=True)
        for n, p in procs.items():
            res.alive[n] = res.alive[n] and p.alive()
            res.logs[n] = p.output()
    return res
