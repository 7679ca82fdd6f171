"""Messages, bags and a publisher process for the record/play tests.

Run as a script, it is the publisher process of the tests:
    python test/bag_fixtures.py publish COUNT RATE_HZ
publishes COUNT deterministic messages on each of TOPICS (image best effort,
the others reliable) once every topic has a subscriber, then exits 0.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# topic -> (type name, QoS kind)
TOPICS = {
    "/rt/image": ("sensor_msgs/msg/Image", "best_effort"),
    "/rt/rgbd": ("depth_ai_nodes/msg/RGBIRDepth", "reliable"),
    "/rt/text": ("std_msgs/msg/String", "reliable"),
}


def make_message(topic: str, i: int) -> Any:
    """The i-th message of `topic`: same bytes every run."""
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from depth_ai_nodes.msg import RGBIRDepth

    rng = np.random.default_rng(1000 * i + len(topic))
    if topic == "/rt/text":
        return String(data=f"message {i}")

    def image(w: int, h: int, enc: str, ch: int, frame: str) -> Image:
        img = Image(width=w, height=h, encoding=enc, step=w * ch)
        img.header.stamp.sec, img.header.stamp.nanosec = 1000 + i, 5_000_000 * i
        img.header.frame_id = frame
        img.data = rng.integers(0, 256, w * h * ch, dtype=np.uint8).tobytes()
        return img

    if topic == "/rt/image":
        return image(64, 48, "mono8", 1, "camera_infra1_optical_frame")
    msg = RGBIRDepth()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + i, 5_000_000 * i
    msg.header.frame_id = "camera_depth_optical_frame"
    msg.color = image(16, 12, "rgb8", 3, "camera_color_optical_frame")
    msg.ir = image(16, 12, "mono8", 1, "camera_infra1_optical_frame")
    msg.depth = image(16, 12, "16UC1", 2, "camera_depth_optical_frame")
    msg.depth_info.k = [float(v) for v in rng.random(9)]
    msg.depth_to_color.rotation = [float(v) for v in rng.random(9)]
    msg.depth_to_color.child_frame_id = "camera_color_optical_frame"
    return msg


def qos(kind: str) -> Any:
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    rel = ReliabilityPolicy.BEST_EFFORT if kind == "best_effort" else ReliabilityPolicy.RELIABLE
    return QoSProfile(depth=50, reliability=rel)


def bag_messages(path: Path) -> dict[str, list[bytes]]:
    """{topic: [raw CDR bytes in order]} of a rosbag2 bag."""
    from rosbags.rosbag2 import Reader

    out: dict[str, list[bytes]] = {}
    with Reader(path) as reader:
        for conn, _, data in reader.messages():
            out.setdefault(conn.topic, []).append(bytes(data))
    return out


def write_ros2_style_bag(path: Path, topics: dict[str, list[Any]], storage: str = "sqlite3",
                         extra_types: dict[str, str] | None = None,
                         extra_messages: dict[str, tuple[str, list[bytes]]] | None = None,
                         period_s: float = 0.05) -> Path:
    """A bag in the exact layout `ros2 bag record` (Jazzy/Kilted) writes: metadata.yaml
    version 9, <name>_0.db3 or .mcap, QoS profiles, rclpy CDR bytes, receive-time stamps.
    `extra_types` registers .msg texts by type name, for types not installed here."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_types_from_msg

    from depth_ai_nodes.tools.bag import qos_to_bag, typestore_for

    store = typestore_for({f"{type(m[0]).__module__.split('.')[0]}/msg/{type(m[0]).__name__}"
                           for m in topics.values()})
    for name, text in (extra_types or {}).items():
        store.register(get_types_from_msg(text, name))
    profile = qos_to_bag(QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                                    durability=DurabilityPolicy.VOLATILE))
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    t0 = 1_700_000_000_000_000_000
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        for topic, msgs in topics.items():
            cls = type(msgs[0])
            msgtype = f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"
            conn = writer.add_connection(topic, msgtype, typestore=store,
                                         offered_qos_profiles=[profile])
            for i, msg in enumerate(msgs):
                writer.write(conn, t0 + int(i * period_s * 1e9), serialize_message(msg))
        for topic, (msgtype, raws) in (extra_messages or {}).items():
            conn = writer.add_connection(topic, msgtype, typestore=store,
                                         offered_qos_profiles=[profile])
            for i, raw in enumerate(raws):
                writer.write(conn, t0 + int(i * period_s * 1e9), raw)
    # ros2 bag names the first file <bag>_0.<ext> and writes its distro where
    # rosbags writes <bag>.<ext> and its own name.
    meta = path / "metadata.yaml"
    ext = "mcap" if storage == "mcap" else "db3"
    (path / f"{path.name}.{ext}").rename(path / f"{path.name}_0.{ext}")
    text = meta.read_text().replace("ros_distro: rosbags", "ros_distro: kilted")
    meta.write_text(text.replace(f"{path.name}.{ext}", f"{path.name}_0.{ext}"))
    return path


def publish(count: int, rate_hz: float) -> int:
    import rclpy

    from depth_ai_nodes.tools.bag import message_class

    rclpy.init()
    node = rclpy.create_node("bag_test_publisher")
    pubs = {t: node.create_publisher(message_class(typ), t, qos(kind))
            for t, (typ, kind) in TOPICS.items()}
    deadline = time.monotonic() + 60.0
    while any(p.get_subscription_count() < 1 for p in pubs.values()):
        if time.monotonic() > deadline:
            print("no subscriber within 60 s", file=sys.stderr)
            return 1
        rclpy.spin_once(node, timeout_sec=0.05)
    for i in range(count):
        for topic, pub in pubs.items():
            pub.publish(make_message(topic, i))
        time.sleep(1.0 / rate_hz)
    time.sleep(0.5)  # reliable readers take the tail
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "publish":
        sys.exit(publish(int(sys.argv[2]), float(sys.argv[3])))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
