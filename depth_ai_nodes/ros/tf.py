"""TF for the nodes, with or without tf2_ros.

On a ROS install tf2_ros does the work. A pip install has no tf2_ros (PyPI carries
no wheel of it) but has tf2_msgs/TFMessage (built from vendor/tf2_msgs by our
install, same type hash as upstream), so the same topics are published and read
here directly, with tf2_ros's own QoS:
  - /tf_static: reliable, transient local, depth 1, one message holding every static
    transform the node has sent (what StaticTransformBroadcaster publishes);
  - /tf: reliable, volatile, depth 100 (TransformBroadcaster).
Reading without tf2_ros covers /tf_static only (static transforms chained through
the tree, no time interpolation): enough for sensors mounted on one rig.
"""
from __future__ import annotations

import importlib
from typing import Any, Iterable

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from depth_ai_nodes.core.transforms import FrameTree
from depth_ai_nodes.ros import conversions as conv
from depth_ai_nodes.ros.qos import latched_qos

TF_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
TF_STATIC_LISTEN_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                                  reliability=ReliabilityPolicy.RELIABLE,
                                  durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _tf_message_type() -> Any | None:
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError:
        return None
    return TFMessage


class StaticBroadcaster:
    """/tf_static like tf2_ros.StaticTransformBroadcaster: the transforms sent so far,
    merged by child frame, in one latched message (late joiners get the whole tree)."""

    def __init__(self, node: Node, msg_type: Any) -> None:
        self._msg_type = msg_type
        self._pub = node.create_publisher(msg_type, "/tf_static", latched_qos())
        self._by_child: dict[str, TransformStamped] = {}

    def sendTransform(self, transforms: TransformStamped | Iterable[TransformStamped]) -> None:  # noqa: N802 (tf2_ros's name)
        for t in [transforms] if isinstance(transforms, TransformStamped) else transforms:
            self._by_child[t.child_frame_id] = t
        self._pub.publish(self._msg_type(transforms=list(self._by_child.values())))


class Broadcaster:
    """/tf like tf2_ros.TransformBroadcaster."""

    def __init__(self, node: Node, msg_type: Any) -> None:
        self._msg_type = msg_type
        self._pub = node.create_publisher(msg_type, "/tf", TF_QOS)

    def sendTransform(self, transforms: TransformStamped | Iterable[TransformStamped]) -> None:  # noqa: N802
        ts = [transforms] if isinstance(transforms, TransformStamped) else list(transforms)
        self._pub.publish(self._msg_type(transforms=ts))


def static_broadcaster(node: Node) -> Any | None:
    """tf2_ros's StaticTransformBroadcaster, else ours over tf2_msgs, else None (logged)."""
    return _broadcaster(node, "tf2_ros.static_transform_broadcaster", "StaticTransformBroadcaster",
                        StaticBroadcaster, "/tf_static")


def broadcaster(node: Node) -> Any | None:
    """tf2_ros's TransformBroadcaster, else ours over tf2_msgs, else None (logged)."""
    return _broadcaster(node, "tf2_ros.transform_broadcaster", "TransformBroadcaster",
                        Broadcaster, "/tf")


def _broadcaster(node: Node, module: str, name: str, fallback: type, topic: str) -> Any | None:
    try:
        return getattr(importlib.import_module(module), name)(node)
    except ImportError:
        pass
    msg_type = _tf_message_type()
    if msg_type is None:
        node.get_logger().warning(f"neither tf2_ros nor tf2_msgs is importable: no {topic}; "
                                  "the extrinsics topics carry the same transforms")
        return None
    return fallback(node, msg_type)


class StaticTransformListener:
    """The part of tf2_ros.Buffer + TransformListener the nodes use, over /tf_static only:
    lookup_transform(target, source, stamp) -> TransformStamped (p_target = T p_source),
    raising LookupError while the frames are not connected."""

    def __init__(self, node: Node, msg_type: Any, gate: Any = None) -> None:
        self.tree = FrameTree()
        self._gate = gate  # ros.inputs.InputGate: rejected transforms are counted and logged
        self._sub = node.create_subscription(msg_type, "/tf_static", self._on_tf_static,
                                             TF_STATIC_LISTEN_QOS)

    def _on_tf_static(self, msg: Any) -> None:
        from depth_ai_nodes.ros import inputs

        for t in msg.transforms:
            try:
                self.tree.set(t.header.frame_id, t.child_frame_id, inputs.transform(t))
            except inputs.Rejected as err:  # NaN, a non-unit quaternion, bad frame ids: never in the tree
                if self._gate is not None:
                    self._gate.reject("tf_static", err)
            except ValueError:
                continue

    def lookup_transform(self, target: str, source: str, stamp: Any = None) -> TransformStamped:
        T = self.tree.lookup(target, source)
        return conv.transform_to_tf(T, target, source, stamp)


def transform_listener(node: Node, gate: Any = None) -> Any | None:
    """A tf2_ros.Buffer with its TransformListener, else our /tf_static listener over
    tf2_msgs (its transforms checked at the input boundary, rejections reported to `gate`),
    else None."""
    try:
        import tf2_ros
        buf = tf2_ros.Buffer()
        tf2_ros.TransformListener(buf, node)
        return buf
    except ImportError:
        pass
    msg_type = _tf_message_type()
    return None if msg_type is None else StaticTransformListener(node, msg_type, gate)
