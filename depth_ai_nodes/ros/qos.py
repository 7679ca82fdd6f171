"""QoS profiles by name (a node parameter), and QoS matched to a live publisher.

Sensor streams default to sensor-data QoS (best effort, keep last 5, volatile)
like realsense-ros. Subscribers match the publisher's reliability and durability
from the graph, so best-effort and reliable sources both just work.
"""
from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

QOS_NAMES = ("sensor_data", "reliable", "best_effort", "default")


def qos_from_name(name: str, depth: int | None = None) -> QoSProfile:
    """'sensor_data' | 'reliable' | 'best_effort' | 'default' -> a QoS profile.

    Raises ValueError naming the accepted values, for start-up config errors."""
    key = name.strip().lower()
    if key in ("sensor_data", "sensor"):
        profile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=qos_profile_sensor_data.depth,
                             reliability=ReliabilityPolicy.BEST_EFFORT,
                             durability=DurabilityPolicy.VOLATILE)
    elif key == "best_effort":
        profile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                             reliability=ReliabilityPolicy.BEST_EFFORT,
                             durability=DurabilityPolicy.VOLATILE)
    elif key in ("reliable", "default", "system_default"):
        profile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                             reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.VOLATILE)
    else:
        raise ValueError(f"unknown QoS {name!r}; use one of {', '.join(QOS_NAMES)}")
    if depth is not None:
        profile.depth = depth
    return profile


def latched_qos() -> QoSProfile:
    """Reliable + transient local depth 1: static data such as extrinsics."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def matching_qos(node: Node, topic: str, depth: int = 5,
                 fallback: QoSProfile | None = None) -> QoSProfile:
    """A subscription QoS compatible with every current publisher of `topic`.

    Reliable only if all publishers are reliable (a reliable reader does not
    match a best-effort writer); transient-local only if all publishers are.
    With no publisher yet, `fallback` (default: best effort, which matches both)."""
    infos = node.get_publishers_info_by_topic(topic)
    if not infos:
        return fallback or QoSProfile(depth=depth, reliability=ReliabilityPolicy.BEST_EFFORT,
                                      durability=DurabilityPolicy.VOLATILE)
    reliable = all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
    latched = all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
