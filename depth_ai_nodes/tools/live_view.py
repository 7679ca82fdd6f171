"""A live view without a ROS install: a Foxglove WebSocket server relaying our topics.

`depth-ai run --foxglove [PORT]` starts it inside the runner (foxglove-sdk, `pip install
foxglove-sdk`): every image, depth, point cloud, camera_info and /diagnostics message the
runner receives is relayed as it came off DDS, CDR bytes with its ros2msg schema, so
Foxglove or Lichtblick (open connection -> Foxglove WebSocket, ws://HOST:PORT) decodes it like
a ROS 2 bag: images and depth in the Image panel, clouds in 3D, diagnostics in their panel.
Nothing is converted or copied beyond the relay itself.
"""
from __future__ import annotations

import time
from typing import Any, Callable

DEFAULT_PORT = 8765


def message_definition(msgtype: str) -> str:
    """The full ros2msg definition (with its dependencies) that Foxglove decodes CDR with;
    msgtype as sensor_msgs/msg/Image."""
    from depth_ai_nodes.tools.bag import typestore_for

    text, _ = typestore_for([msgtype]).generate_msgdef(msgtype, ros_version=2)
    return text


class FoxgloveRelay:
    """One foxglove-sdk WebSocket server; `relay(topic, msgtype)` gives a raw-CDR callback."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, name: str = "depth_ai_nodes") -> None:
        try:
            import foxglove
        except ImportError as err:
            raise RuntimeError("the live view needs foxglove-sdk: pip install foxglove-sdk") from err
        self._foxglove = foxglove
        self.server = foxglove.start_server(name=name, host=host, port=port)
        self.port = self.server.port
        self.host = host
        self._channels: dict[str, Any] = {}

    def relay(self, topic: str, msgtype: str) -> Callable[[bytes], None]:
        fg = self._foxglove
        if topic not in self._channels:
            schema = fg.Schema(name=msgtype, encoding="ros2msg", data=message_definition(msgtype).encode())
            self._channels[topic] = fg.Channel(topic, schema=schema, message_encoding="cdr")
        channel = self._channels[topic]

        def log(raw: bytes) -> None:
            channel.log(bytes(raw), log_time=time.time_ns())
        return log

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()
        self.server.stop()
