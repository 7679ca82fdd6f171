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


# What a node's `qos_depth` parameter says (one text for every node that has it)
QOS_DEPTH_HELP = ("History depth (KEEP_LAST) of these topics; 0: that of `qos` (sensor_data 5, the others "
                  "10). A reliable writer keeps a message in it until every reader has all of it, and over a "
                  "lossy link a large message can take longer to repair than 10 messages last: with one frame "
                  "in 20 lost, none of the 6.3 MB LiDAR scans at 10 Hz or 2.7 MB 1280x720 images at 30 Hz "
                  "arrived; keeping 40 scans or 30 images, 0.96-1.06 of them did. --multi-host sets those "
                  "(bench/RESULTS.md).")


def output_qos(name: str, depth: int = 0) -> QoSProfile:
    """A node's output QoS from its `qos` and `qos_depth` parameters (0: the depth of `qos`).

    Raises ValueError naming what to set, for start-up config errors."""
    if int(depth) < 0:
        raise ValueError(f"qos_depth {depth}: use 0 (the depth of qos) or a history depth >= 1")
    return qos_from_name(name, depth=int(depth) or None)


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
