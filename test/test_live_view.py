"""`depth-ai run --foxglove`: a live view without rviz2. A WebSocket client speaking the
Foxglove protocol (what Foxglove and Lichtblick do) connects to the runner, subscribes, and
decodes real messages of the running pipeline from their CDR bytes and ros2msg schema."""
from __future__ import annotations

import json
import socket
import struct
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image, PointCloud2

from harness import NodeProcess, executable

pytestmark = pytest.mark.ros
websockets = pytest.importorskip("websockets.sync.client", reason="websockets not installed")
ConnectionClosed = pytest.importorskip("websockets.exceptions").ConnectionClosed
pytest.importorskip("foxglove", reason="foxglove-sdk not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runner_streams_images_clouds_and_diagnostics_to_a_foxglove_client(tmp_path):
    port = free_port()
    # --duration beyond the client's own deadline (start-up 60 s + 60 s): a runner that stopped
    # first closed the connection under a loaded CI machine (1005), which said nothing useful
    cmd = [executable("depth-ai"), "run", "--foxglove", str(port), "--duration", "150", "--no-inference",
           "--no-preview", "--log-dir", str(tmp_path), "--status-period", "2"]
    wanted = {"/camera/color/image_raw": Image, "/fused/points": PointCloud2, "/diagnostics": DiagnosticArray}
    decoded: dict[str, object] = {}
    with NodeProcess(cmd) as runner:
        deadline = time.monotonic() + 60.0
        while "live view: Foxglove WebSocket server" not in runner.output():
            assert time.monotonic() < deadline and runner.alive(), runner.output()[-3000:]
            time.sleep(0.2)
        # max_size=None: a fused cloud can exceed the client library's 1 MiB default, the app has no such limit
        with websockets.connect(f"ws://127.0.0.1:{port}", subprotocols=["foxglove.sdk.v1"],
                                open_timeout=10, max_size=None) as ws:
            channels: dict[int, dict] = {}
            subs: dict[int, str] = {}
            frames: dict[str, int] = {}  # message frames received per topic (for a failure's message)
            other: dict[int, int] = {}   # binary frames of other opcodes, by opcode
            while len(decoded) < len(wanted) and time.monotonic() < deadline + 60.0:
                try:
                    frame = ws.recv(timeout=2.0)
                except TimeoutError:
                    continue
                except ConnectionClosed as closed:
                    raise AssertionError(f"the live view closed the connection ({closed}) with "
                                         f"{sorted(decoded)} decoded:\n{runner.output()[-3000:]}") from None
                if isinstance(frame, str):
                    msg = json.loads(frame)
                    if msg.get("op") == "advertise":
                        for ch in msg["channels"]:
                            channels[ch["id"]] = ch
                            if ch["topic"] in wanted and ch["topic"] not in subs.values():
                                sub_id = len(subs) + 1
                                subs[sub_id] = ch["topic"]
                                assert ch["encoding"] == "cdr" and ch["schemaEncoding"] == "ros2msg"
                                ws.send(json.dumps({"op": "subscribe",
                                                    "subscriptions": [{"id": sub_id, "channelId": ch["id"]}]}))
                    continue
                if frame[0] != 0x01:  # message data: op, subscription id, receive time, payload
                    other[frame[0]] = other.get(frame[0], 0) + 1
                    continue
                sub_id, _ = struct.unpack_from("<IQ", frame, 1)
                topic = subs.get(sub_id)
                frames[topic] = frames.get(topic, 0) + 1
                if topic and topic not in decoded:
                    decoded[topic] = deserialize_message(frame[13:], wanted[topic])
                    # one of each is enough: a client that keeps 30 fps images and 5 MB clouds
                    # coming on a loaded machine falls behind, and the server drops what it
                    # cannot send, the small diagnostics too
                    ws.send(json.dumps({"op": "unsubscribe", "subscriptionIds": [sub_id]}))
        assert runner.alive()
        text = runner.output()  # the log file goes with the process
    advertised = sorted(channels[c]["topic"] for c in channels)
    ids = {t: sorted(c for c in channels if channels[c]["topic"] == t) for t in wanted}
    assert set(decoded) == set(wanted), (f"decoded {sorted(decoded)}; message frames per topic {frames}; "
                                         f"not advertised: {sorted(set(wanted) - set(advertised))}; channel ids "
                                         f"{ids}; subscriptions {subs}; other frames {other}", text[-1500:])
    img = decoded["/camera/color/image_raw"]
    assert img.encoding == "rgb8" and len(img.data) == img.height * img.step and img.width > 0
    cloud = decoded["/fused/points"]
    assert cloud.width * cloud.height > 1000 and "ir" in [f.name for f in cloud.fields]
    assert any(s.name.startswith("camera") or s.name.startswith("lidar") for s in decoded["/diagnostics"].status)
