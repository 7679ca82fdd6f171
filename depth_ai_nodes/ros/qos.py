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
                  "in 20 lost, on one machine none of the 6.3 MB LiDAR scans at 10 Hz or 2.7 MB 1280x720 images "
                  "at 30 Hz arrived with 10, and all did with 40 scans or 30 images (on another, where sending "
                  "them took half the CPU, 10 was enough). --multi-host sets these writer depths "
                  "(bench/RESULTS.md).")


def input_qos_depth_help(own: str) -> str:
    """What a node's `input_qos_depth` parameter says; `own`: the node's depth when it is 0."""
    return (f"History depth (KEEP_LAST) of the sensor subscriptions; 0: {own}. A reliable reader drops a "
            f"large message still under repair once that many newer ones have arrived: across a link "
            f"with one frame in 20 lost, raw 6.3 MB LiDAR scans at 10 Hz stopped reaching a fusion node "
            f"keeping 5 and kept flowing (0.62-0.81 of the clean rate) with 10, which --multi-host sets "
            f"for the fusion node (which decodes only the newest queued scan, so a deeper reader "
            f"adds no backlog there). Deeper, a node slower than its input works through a backlog "
            f"of its other streams, and it costs memory (at worst depth x message size per topic) "
            f"(bench/RESULTS.md).")


def history_depth(depth: int, parameter: str = "qos_depth") -> int:
    """A `*qos_depth` parameter checked: 0 (the default depth) or >= 1.

    Raises ValueError naming what to set, for start-up config errors."""
    if int(depth) < 0:
        raise ValueError(f"{parameter} {depth}: use 0 (the default depth) or a history depth >= 1")
    return int(depth)


def output_qos(name: str, depth: int = 0) -> QoSProfile:
    """A node's output QoS from its `qos` and `qos_depth` parameters (0: the depth of `qos`).

    Raises ValueError naming what to set, for start-up config errors."""
    return qos_from_name(name, depth=history_depth(depth) or None)


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
