"""`depth-ai record` / `depth-ai play` across real processes over real DDS.

- Round trip: a publisher process -> record (mcap) -> play -> record (sqlite3 +
  zstd) gives byte-identical messages on every topic, our custom message
  included; each topic's QoS (best effort image, reliable others) is matched
  and written to the metadata.
- play waits for subscribers: the first message is not lost.
- /clock: bag time for use_sim_time, monotonic, ending at the last message.
- A bag in `ros2 bag record`'s layout (metadata version 9, sqlite3) plays; a
  topic of a type not installed here is skipped with a message naming it.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from std_msgs.msg import String

from rclpy.serialization import deserialize_message

from depth_ai_nodes.tools.bag import message_class
from bag_fixtures import TOPICS, bag_messages, make_message, write_ros2_style_bag
from harness import REPO, NodeProcess, collect, executable, spin_until

pytestmark = pytest.mark.ros

COUNT = 15
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def depth_ai(*args: str) -> NodeProcess:
    return NodeProcess([executable("depth-ai"), *args])


def finished(proc: NodeProcess, timeout: float = 60.0) -> str:
    """Wait for a process that stops by itself; assert exit 0; its output."""
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.stop()
        raise AssertionError(f"{proc.command} did not finish in {timeout} s:\n{proc.output()}")
    assert code == 0, f"{proc.command} exited {code}:\n{proc.output()}"
    return proc.output()


def metadata(bag: Path) -> dict:
    return yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]


def test_record_play_record_is_byte_exact(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    total = COUNT * len(TOPICS)
    with depth_ai("record", *TOPICS, "-o", str(first), "-s", "mcap",
                  "--max-messages", str(total), "--duration", "60") as rec, \
            NodeProcess([sys.executable, str(REPO / "test" / "bag_fixtures.py"), "publish",
                         str(COUNT), "20"]) as pub:
        finished(pub)
        out = finished(rec)
    original = bag_messages(first)
    # Compare as messages: CDR alignment padding is not zeroed by the serializer,
    # so only bytes that travelled unchanged compare equal byte for byte.
    for topic, (msgtype, _) in TOPICS.items():
        cls = message_class(msgtype)
        recorded = [deserialize_message(raw, cls) for raw in original.get(topic, [])]
        assert recorded == [make_message(topic, i) for i in range(COUNT)], (
            f"{topic}: recorded {len(recorded)} of {COUNT}\n{out}")
    meta = metadata(first)
    assert meta["version"] == 9 and meta["storage_identifier"] == "mcap"
    qos = {t["topic_metadata"]["name"]: t["topic_metadata"]["offered_qos_profiles"]
           for t in meta["topics_with_message_count"]}
    assert qos["/rt/image"][0]["reliability"] in ("best_effort", 2), qos["/rt/image"]
    assert qos["/rt/text"][0]["reliability"] in ("reliable", 1), qos["/rt/text"]

    # play it back (waiting for the recorder) into a second bag: sqlite3, zstd
    with depth_ai("record", *TOPICS, "-o", str(second), "-s", "sqlite3", "--compression",
                  "zstd", "--compression-mode", "message", "--max-messages", str(total),
                  "--duration", "60") as rec2, \
            depth_ai("play", str(first), "--wait-for-subscribers", "1", "--rate", "2") as player:
        finished(player)
        out2 = finished(rec2)
    assert bag_messages(second) == original, out2
    assert metadata(second)["compression_format"] == "zstd"


@pytest.fixture(scope="module")
def ros2_style_bag(tmp_path_factory) -> Path:
    """A bag as `ros2 bag record` writes it, with one topic of a type not installed."""
    path = tmp_path_factory.mktemp("bags") / "ros2_recorded"
    texts = [String(data=f"hello {i}") for i in range(COUNT)]
    images = [make_message("/rt/image", i) for i in range(COUNT)]
    exotic = {"vendor_msgs/msg/Thing": "uint32 value\n"}
    raw = [b"\x00\x01\x00\x00" + i.to_bytes(4, "little") for i in range(3)]
    return write_ros2_style_bag(path, {"/chatter": texts, "/camera/infra1/image_rect_raw": images},
                                extra_types=exotic,
                                extra_messages={"/vendor/thing": ("vendor_msgs/msg/Thing", raw)})


def test_ros2_bag_layout_plays_and_unknown_type_is_named(ros_node, ros2_style_bag):
    meta = metadata(ros2_style_bag)
    assert meta["version"] == 9 and (ros2_style_bag / "ros2_recorded_0.db3").is_file()
    with depth_ai("play", str(ros2_style_bag), "--wait-for-subscribers", "1",
                  "--wait-topics", "/chatter", "--wait-timeout", "60") as player:
        got = collect(ros_node, {"/chatter": String}, count=COUNT, timeout=60.0, qos=RELIABLE)
        out = finished(player)
    assert [m.data for _, m in got["/chatter"]] == [f"hello {i}" for i in range(COUNT)], out
    assert "skipping /vendor/thing" in out and "vendor_msgs/msg/Thing is not installed" in out, out


def test_play_waits_for_subscribers_so_the_first_message_arrives(ros_node, ros2_style_bag):
    """The player starts first and must hold the first message until we subscribe."""
    with depth_ai("play", str(ros2_style_bag), "--topics", "/chatter",
                  "--wait-for-subscribers", "1", "--wait-timeout", "60") as player:
        assert spin_until(ros_node, lambda: ros_node.count_publishers("/chatter") > 0, 30.0), \
            player.output()
        got = collect(ros_node, {"/chatter": String}, count=COUNT, timeout=60.0, qos=RELIABLE)
        finished(player)
    assert [m.data for _, m in got["/chatter"]][:1] == ["hello 0"]
    assert len(got["/chatter"]) == COUNT


def test_play_publishes_clock_in_bag_time(ros_node, ros2_style_bag):
    start_ns = 1_700_000_000_000_000_000  # write_ros2_style_bag's first receive time
    last_ns = start_ns + int((COUNT - 1) * 0.05e9)
    clocks: list[int] = []
    sub = ros_node.create_subscription(
        Clock, "/clock", lambda m: clocks.append(m.clock.sec * 10**9 + m.clock.nanosec), 100)
    try:
        with depth_ai("play", str(ros2_style_bag), "--clock", "50", "--topics", "/chatter",
                      "--wait-for-subscribers", "1", "--wait-topics", "/clock",
                      "--start-paused", "--resume-after", "1.0") as player:
            spin_until(ros_node, lambda: bool(clocks) and clocks[-1] >= last_ns, 60.0)
            out = finished(player)
    finally:
        ros_node.destroy_subscription(sub)
    assert clocks, "no /clock received\n" + out
    assert "paused" in out and "resumed" in out, out
    assert all(b >= a for a, b in zip(clocks, clocks[1:])), "/clock went backwards"
    assert start_ns <= clocks[0] and clocks[-1] == last_ns
    assert len(clocks) >= 5  # published at its rate during the ~0.7 s of bag time too


def test_play_start_offset_rate_and_loop(ros_node, ros2_style_bag):
    # messages every 0.05 s of bag time; offset 0.3 s skips the first 6; at rate 0.5 they come
    # 0.1 s apart. Checked on the median gap between arrivals: a first message that reaches the
    # reader late (a reliable resend while the match completes) shortens the first-to-last span
    # (0.719 s against 0.72 once in CI) without saying anything about the pacing; rate 1 would
    # give a median of 0.05 s
    with depth_ai("play", str(ros2_style_bag), "--topics", "/chatter", "--start-offset", "0.3",
                  "--rate", "0.5", "--wait-for-subscribers", "1") as player:
        got = collect(ros_node, {"/chatter": String}, count=COUNT - 6, timeout=60.0, qos=RELIABLE)
        finished(player)
    msgs = got["/chatter"]
    assert [m.data for _, m in msgs] == [f"hello {i}" for i in range(6, COUNT)]
    gaps = np.diff([t for t, _ in msgs])
    assert np.median(gaps) >= 0.8 * 0.05 / 0.5, gaps

    with depth_ai("play", str(ros2_style_bag), "--topics", "/chatter", "--loop", "--rate", "4",
                  "--wait-for-subscribers", "1") as player:
        got = collect(ros_node, {"/chatter": String}, count=2 * COUNT + 1, timeout=60.0,
                      qos=RELIABLE)
        assert player.stop() == 0, player.output()
    texts = [m.data for _, m in got["/chatter"]]
    assert texts[:2 * COUNT + 1] == [f"hello {i % COUNT}" for i in range(2 * COUNT + 1)]


LATCHED_PUBLISHER = r"""
import time, rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy, DurabilityPolicy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("latched_publisher")
qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
node.create_publisher(String, "/rt/latched", qos).publish(String(data="calibration"))
print("published", flush=True)
while rclpy.ok():
    rclpy.spin_once(node, timeout_sec=0.1)
"""


def test_record_gets_a_latched_message_published_before_it_started(tmp_path):
    """Only a transient-local subscription gets it: record matches the durability."""
    import time

    out = tmp_path / "latched"
    with NodeProcess([sys.executable, "-c", LATCHED_PUBLISHER]) as pub:
        deadline = time.monotonic() + 30.0
        while "published" not in pub.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "published" in pub.output(), pub.output()
        with depth_ai("record", "/rt/latched", "-o", str(out), "--max-messages", "1",
                      "--duration", "30") as rec:
            finished(rec)
    from rclpy.serialization import deserialize_message as des

    assert [des(raw, String).data for raw in bag_messages(out)["/rt/latched"]] == ["calibration"]
    qos = metadata(out)["topics_with_message_count"][0]["topic_metadata"]["offered_qos_profiles"]
    assert qos[0]["durability"] in ("transient_local", 1), qos


def test_mcap_schemas_decode_with_an_independent_ros2msg_decoder(tmp_path):
    """What Foxglove does with an mcap: read each channel's ros2msg schema and decode the
    CDR with it, no ROS types involved (the mcap + mcap-ros2-support libraries)."""
    mcap_reader = pytest.importorskip("mcap.reader")
    decoder = pytest.importorskip("mcap_ros2.decoder")
    from depth_ai_nodes.msg import RGBIRDepth

    bag = write_ros2_style_bag(tmp_path / "foxglove", {
        "/rt/rgbd": [make_message("/rt/rgbd", i) for i in range(3)],
        "/rt/image": [make_message("/rt/image", i) for i in range(3)]}, storage="mcap")
    seen = {}
    with open(next(bag.glob("*.mcap")), "rb") as f:
        reader = mcap_reader.make_reader(f, decoder_factories=[decoder.DecoderFactory()])
        for schema, channel, _, msg in reader.iter_decoded_messages():
            assert channel.message_encoding == "cdr" and schema.encoding == "ros2msg"
            seen.setdefault(channel.topic, (schema.name, msg))
    assert seen["/rt/image"][0] == "sensor_msgs/msg/Image"
    name, rgbd = seen["/rt/rgbd"]
    want = make_message("/rt/rgbd", 0)
    assert name == "depth_ai_nodes/msg/RGBIRDepth" and isinstance(want, RGBIRDepth)
    assert rgbd.header.frame_id == want.header.frame_id
    assert bytes(rgbd.color.data) == bytes(want.color.data)
    assert list(rgbd.depth_info.k) == list(want.depth_info.k)
    assert list(rgbd.depth_to_color.rotation) == list(want.depth_to_color.rotation)
